//! The full-size keyed zoo that `./build.sh test` makes as a user with the official files would:
//! `unforge init-zoo --official-shapes` writes files shaped like `e4e_ffhq_encode.pt` and an
//! Artifact-Eraser Xception (keyed, untrained weights), and `unforge zoo` converts them (f16, the
//! encoder in shards). Loaded from disk a tensor at a time, it inverts to the same bits as the
//! same keyed weights converted and put together in memory.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use common::{test_image, to_vec};
use unforge::convert::{ConvertOptions, convert};
use unforge::networks::e4e::EncoderVariant;
use unforge::weights::{StoredPrecision, TensorFile};
use unforge::zoo::{Role, Zoo, ZooFiles, open_dir};

/// `unforge init-zoo`'s default seed, which build.sh uses.
const SEED: u64 = 7;

#[test]
fn the_full_size_zoo_built_by_the_command_inverts_as_its_weights_do() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/keyed-full");
    assert!(dir.join("zoo.json").is_file(), "{} is missing: ./build.sh test makes it", dir.display());
    let device = Device::flex();
    let image = test_image(256);

    let streamed = open_dir(&dir, &device).unwrap();
    assert_eq!((streamed.generator.size, streamed.manifest.n_latent), (1024, 18));
    let shards = &streamed.manifest.encoder().unwrap().shards;
    assert!(shards.len() >= 4, "the encoder in shards: {shards:?}");
    let from_disk = to_vec(streamed.inverter().invert(&image, &device).latent);
    let manifest = streamed.manifest.clone();
    drop(streamed);

    // The same keyed files, converted here and stored whole at f16.
    let mut shaped = unforge::zoo_init::official_shaped(1024, 2, SEED).unwrap();
    let take = |shaped: &mut Vec<(String, TensorFile)>, name: &str| {
        let at = shaped.iter().position(|(n, _)| n == name).expect(name);
        shaped.remove(at).1
    };
    let e4e = take(&mut shaped, "e4e_ffhq_encode.safetensors");
    let (decoder, encoder): (Vec<_>, Vec<_>) = e4e.tensors.into_iter().partition(|(k, _)| k.starts_with("decoder."));
    let mut sources = vec![
        (Role::Generator, TensorFile { tensors: decoder.into_iter().collect() }),
        (Role::Encoder, TensorFile { tensors: encoder.into_iter().collect() }),
        (Role::Detector, take(&mut shaped, "xception.safetensors")),
    ];
    let mut whole = manifest.clone();
    let mut files = ZooFiles::new();
    for entry in whole.networks.iter_mut() {
        let at = sources.iter().position(|(role, _)| *role == entry.role).expect("one file per role");
        let (role, tensors) = sources.remove(at);
        let opts = ConvertOptions {
            role,
            name: entry.name.clone(),
            file: entry.file.clone(),
            input_size: (role == Role::Detector).then_some(entry.input_size),
            normalization: entry.normalization,
            encoder_variant: EncoderVariant::Encoder4Editing,
        };
        let converted = convert(tensors, &opts).unwrap();
        assert_eq!(converted.entry.architecture, entry.architecture, "{}: the command inferred the same", entry.name);
        files.insert(entry.file.clone(), converted.tensors.to_safetensors(StoredPrecision::F16));
        entry.shards.clear();
    }
    let in_memory = Zoo::load(whole, &files, &device).unwrap();
    drop(files);
    assert_eq!(to_vec(in_memory.inverter().invert(&image, &device).latent), from_disk);
    // The folder holds what the manifest lists, and nothing else.
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let mut listed: Vec<String> = manifest.files().into_iter().map(String::from).chain(["zoo.json".into()]).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

//! Weights as they stream in: a file read in pieces of any size is the file read whole, a zoo
//! whose large network is stored in shards loads to the same networks, and a load given its
//! files wrongly says what is wrong.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::weights::{HostTensor, SafetensorsReader, StoredPrecision, TensorFile};
use unforge::zoo::{Zoo, ZooFiles, ZooLoader};

/// The tensors of `bytes` read in pieces of `piece` bytes.
fn read_in_pieces(bytes: &[u8], piece: usize) -> unforge::error::Result<TensorFile> {
    let mut file = TensorFile::default();
    let mut reader = SafetensorsReader::new("pieces.safetensors");
    for chunk in bytes.chunks(piece) {
        reader.push(chunk, &mut |name, t: HostTensor| {
            file.tensors.insert(name, t);
            Ok(())
        })?;
    }
    let summary = reader.finish()?;
    assert_eq!(summary.bytes, bytes.len());
    Ok(file)
}

#[test]
fn a_file_read_in_pieces_of_any_size_is_the_file_read_whole() {
    let (_, files) = tiny_files();
    // f16, with an integer tensor the reader skips, so every branch of the decoding runs.
    let mut weights = TensorFile::from_safetensors(&files["xception.safetensors"], "x").unwrap();
    weights.tensors.insert("bn.num_batches_tracked".into(), HostTensor::new(vec![], vec![0.0]));
    let bytes = weights.to_safetensors(StoredPrecision::F16);
    let whole = TensorFile::from_safetensors(&bytes, "whole").unwrap();
    for piece in [1, 3, 8, 1000, 65_536, bytes.len()] {
        assert_eq!(read_in_pieces(&bytes, piece).unwrap(), whole, "pieces of {piece} bytes");
    }
    // Cut anywhere, the file is an error naming it and saying where it ended.
    for cut in [0, 5, 8, 9, 200, bytes.len() / 2, bytes.len() - 1] {
        let err = read_in_pieces(&bytes[..cut], 7).unwrap_err().to_string();
        assert!(err.contains("pieces.safetensors"), "cut at {cut}: {err}");
        assert!(err.contains("ends") || err.contains("too short"), "cut at {cut}: {err}");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"extra");
    let err = read_in_pieces(&longer, 4096).unwrap_err().to_string();
    assert!(err.contains("5 bytes past the end"), "{err}");
}

/// The tiny zoo with its encoder stored in `n` shards (or more: a shard holds whole tensors).
fn sharded(n: usize) -> (unforge::zoo::Manifest, ZooFiles, usize) {
    let (mut manifest, mut files) = tiny_files();
    let entry = manifest.networks.iter_mut().find(|e| e.name == "e4e").expect("the tiny zoo's encoder");
    let bytes = files.remove(&entry.file).expect("encoder file");
    let weights = TensorFile::from_safetensors(&bytes, &entry.file).unwrap();
    let shards = weights.into_shards(bytes.len() / n, StoredPrecision::F32);
    for (i, shard) in shards.iter().enumerate() {
        let name = format!("e4e-{:05}-of-{:05}.safetensors", i + 1, shards.len());
        files.insert(name.clone(), shard.to_safetensors(StoredPrecision::F32));
        entry.shards.push(name);
    }
    (manifest, files, shards.len())
}

#[test]
fn a_zoo_with_a_sharded_encoder_inverts_to_the_same_bits() {
    let device = Device::flex();
    let image = test_image(32);
    let whole = tiny_zoo();
    let (manifest, files, count) = sharded(4);
    assert!(count >= 4, "{count} shards");
    let others = manifest.networks.len() - 1;
    assert_eq!(
        manifest.files().len(),
        others + count,
        "each shard, and the other networks' files: {:?}",
        manifest.files()
    );
    let split = Zoo::load(manifest.clone(), &files, &device).unwrap();
    let a = to_vec(whole.inverter().invert(&image, &device).latent);
    let b = to_vec(split.inverter().invert(&image, &device).latent);
    assert_eq!(a, b);

    // A missing shard is named; so is a tensor in two shards.
    let mut missing = files.clone();
    missing.remove(manifest.files()[2]);
    let err = Zoo::load(manifest.clone(), &missing, &device).unwrap_err().to_string();
    assert!(err.contains(manifest.files()[2]) && err.contains("missing"), "{err}");
    let mut twice = files.clone();
    let (first, second) = (manifest.files()[1].to_string(), manifest.files()[2].to_string());
    let mut doubled = TensorFile::from_safetensors(&files[&second], &second).unwrap();
    let stolen = TensorFile::from_safetensors(&files[&first], &first).unwrap();
    let (key, tensor) = stolen.tensors.into_iter().next().unwrap();
    doubled.tensors.insert(key.clone(), tensor);
    twice.insert(second.clone(), doubled.to_safetensors(StoredPrecision::F32));
    let err = Zoo::load(manifest, &twice, &device).unwrap_err().to_string();
    assert!(err.contains(&key) && err.contains("another shard"), "{err}");
}

#[test]
fn a_load_given_its_files_wrongly_says_what_is_wrong() {
    let (manifest, files) = tiny_files();
    let device = Device::flex();
    let err = |r: unforge::error::Result<()>| r.unwrap_err().to_string();
    let mut loader = ZooLoader::new(manifest.clone(), &device).unwrap();
    assert!(err(loader.push(b"abc")).contains("before their file was begun"));
    assert!(err(loader.end()).contains("no weight file is being read"));
    assert!(err(loader.begin("other.safetensors")).contains("not a weight file of zoo"));
    loader.begin("generator.safetensors").unwrap();
    assert!(err(loader.begin("encoder.safetensors")).contains("still being read"));
    loader.push(&files["generator.safetensors"]).unwrap();
    loader.end().unwrap();
    assert!(err(loader.add("generator.safetensors", &files["generator.safetensors"])).contains("given twice"));
    // Not every file given: the first network without its file is named.
    let e = loader.finish().unwrap_err().to_string();
    assert!(e.contains("encoder.safetensors") && e.contains("missing"), "{e}");
    // A file that stops short is named with where it stopped.
    let mut loader = ZooLoader::new(manifest, &device).unwrap();
    let g = &files["generator.safetensors"];
    let e = err(loader.add("generator.safetensors", &g[..g.len() - 10]));
    assert!(e.contains("generator.safetensors") && e.contains("ends after"), "{e}");
}

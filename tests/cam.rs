//! Class activation maps: Grad-CAM against its closed form for a linear head, and the shape and
//! range of all three methods.

mod common;

use burn::tensor::Device;
use common::*;
use unforge::block_on;
use unforge::explain::{CamMethod, CamTarget, class_activation, feature_map};
use unforge::networks::DetectorNet;

#[test]
fn cams_are_maps_in_unit_range_at_image_size() {
    let zoo = tiny_zoo();
    let (_, det) = &zoo.detectors[0];
    let image = test_image(32).to_tensor(32, &Device::flex());
    for method in [CamMethod::GradCam, CamMethod::GradCamPlusPlus, CamMethod::LayerCam] {
        let cam = block_on(class_activation(det, image.clone(), &CamTarget::fake(), method)).unwrap();
        assert_eq!((cam.width, cam.height, cam.values.len()), (32, 32, 32 * 32));
        assert!(cam.values.iter().all(|v| (0.0..=1.0).contains(v)), "{method:?}");
        assert!(cam.values.contains(&1.0) || cam.values.iter().all(|v| *v == 0.0), "{method:?} not normalised");
    }
}

#[test]
fn grad_cam_weights_follow_the_linear_head() {
    // Xception's head is relu → mean → linear, so ∂y_c/∂A_kij = W_ck · 1[A_kij > 0] / (h·w) and
    // the Grad-CAM weight of channel k is W_ck · (fraction of A_k > 0) / (h·w).
    use unforge::networks::xception::Xception;
    use unforge::networks::{Detector, Normalization};
    let dev = Device::flex();
    let source = unforge::weights::WeightSource::seeded(9);
    let net = Xception::new(&source.root(&dev), &unforge::zoo_init::TinyZooSpec::default().detector()).unwrap();
    let det = Detector { net: DetectorNet::Xception(net), input_size: 96, normalization: Normalization::MinusOneOne };
    let image = test_image(96).to_tensor(96, &dev);
    let a = det.features(image.clone());
    let [_, c, h, w] = a.dims();
    assert!(h * w >= 4, "features of {h}×{w} make a weak test");
    let a = to_vec(a);
    let DetectorNet::Xception(net) = &det.net else { unreachable!() };
    let wt = to_vec(net.last_linear.weight.val());
    let n = h * w;
    let mut manual = vec![0f32; n];
    for k in 0..c {
        let ak = &a[k * n..(k + 1) * n];
        let frac = ak.iter().filter(|v| **v > 0.0).count() as f32 / n as f32;
        let weight = wt[c + k] * frac / n as f32;
        manual.iter_mut().zip(ak).for_each(|(m, a)| *m += weight * a);
    }
    let (got, gh, gw) = block_on(feature_map(&det, image, &CamTarget::fake(), CamMethod::GradCam)).unwrap();
    assert_eq!((gh, gw), (h, w));
    let scale = manual.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, m)) in got.iter().zip(&manual).enumerate() {
        assert!((g - m.max(0.0)).abs() <= 1e-4 * scale, "cell {i}: {g} vs {}", m.max(0.0));
    }
    assert!(got.iter().any(|v| *v > 0.0), "an all-zero map tests nothing");
}

#[test]
fn cams_at_any_layer_and_class() {
    let zoo = tiny_zoo();
    let image = test_image(32).to_tensor(32, &Device::flex());
    for (name, det) in &zoo.detectors {
        let layers = det.layer_names();
        assert!(layers.len() > 3, "{name}: {layers:?}");
        // The default is the last layer.
        let last = CamTarget { class: 1, layer: Some(layers.last().unwrap().clone()) };
        let a = block_on(feature_map(det, image.clone(), &CamTarget::fake(), CamMethod::GradCam)).unwrap();
        let b = block_on(feature_map(det, image.clone(), &last, CamMethod::GradCam)).unwrap();
        assert_eq!(a, b, "{name}");
        // An early layer has its own, finer resolution.
        let early = CamTarget { class: 0, layer: Some(layers[1].clone()) };
        let (_, h, w) = block_on(feature_map(det, image.clone(), &early, CamMethod::LayerCam)).unwrap();
        let expected = det.activation(image.clone(), 1).dims();
        assert_eq!((h, w), (expected[2], expected[3]), "{name}");
        assert!(h > a.1, "{name}: layer {} is not finer than the last", layers[1]);
        let cam = block_on(class_activation(det, image.clone(), &early, CamMethod::GradCamPlusPlus)).unwrap();
        assert_eq!(cam.values.len(), 32 * 32);
        // Unknown layers and classes are errors that say what exists.
        let err = block_on(class_activation(
            det,
            image.clone(),
            &CamTarget { class: 1, layer: Some("block99".into()) },
            CamMethod::GradCam,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("no layer `block99`") && err.to_string().contains(&layers[0]), "{err}");
        let err =
            block_on(class_activation(det, image.clone(), &CamTarget { class: 5, layer: None }, CamMethod::GradCam))
                .unwrap_err();
        assert!(err.to_string().contains("class 5"), "{err}");
    }
}

#[test]
fn staged_forward_equals_the_whole_network() {
    let zoo = tiny_zoo();
    let image = test_image(32).to_tensor(32, &Device::flex());
    for (name, det) in &zoo.detectors {
        let whole = to_vec(det.logits(image.clone()));
        for layer in [0, 2, det.layer_names().len() - 1] {
            let split = to_vec(det.logits_from(det.activation(image.clone(), layer), layer));
            assert_eq!(whole, split, "{name} split at {layer}");
        }
    }
}

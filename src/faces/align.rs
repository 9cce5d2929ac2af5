//! The FFHQ alignment (`recreate_aligned_images` of the FFHQ dataset script, which e4e's
//! `align_face` repeats at 256 px): an oriented square from the eyes and the mouth, then the
//! picture shrunk, cropped, padded by reflection with a blurred, median-filled border, and
//! resampled over the square.
//!
//! Coordinates are continuous (pixel `i` spans `[i, i + 1)`); the script works in dlib's pixel
//! indices, half a pixel less, and its integer steps are taken there so they round as it does.
//! Two departures, both in the resampling filters: PIL's Lanczos `ANTIALIAS` resizes are area
//! (box) resizes here, and the quad is sampled at `max(size, 256)` and box-averaged to `size`
//! (the script samples at 4× for FFHQ, e4e at 1×), so small encoders get an anti-aliased crop.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::RgbaImage;

type Point = [f32; 2];

/// The oriented square of a face's crop, corners in the script's order: top-left,
/// bottom-left, bottom-right, top-right (of the upright face).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quad {
    pub corners: [Point; 4],
}

fn add(a: Point, b: Point) -> Point {
    [a[0] + b[0], a[1] + b[1]]
}
fn sub(a: Point, b: Point) -> Point {
    [a[0] - b[0], a[1] - b[1]]
}
fn scale(a: Point, k: f32) -> Point {
    [a[0] * k, a[1] * k]
}
fn hypot(a: Point) -> f32 {
    a[0].hypot(a[1])
}

impl Quad {
    /// The script's square from the two eye centres (the one on the picture's left first) and
    /// the mouth's centre (the mean of its corners).
    pub fn ffhq(eye_left: Point, eye_right: Point, mouth: Point) -> Self {
        let eye_avg = scale(add(eye_left, eye_right), 0.5);
        let eye_to_eye = sub(eye_right, eye_left);
        let eye_to_mouth = sub(mouth, eye_avg);
        // x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1]
        let mut x = [eye_to_eye[0] + eye_to_mouth[1], eye_to_eye[1] - eye_to_mouth[0]];
        x = scale(x, 1.0 / hypot(x).max(f32::MIN_POSITIVE));
        x = scale(x, (hypot(eye_to_eye) * 2.0).max(hypot(eye_to_mouth) * 1.8));
        // y = flipud(x) * [-1, 1]
        let y = [-x[1], x[0]];
        let c = add(eye_avg, scale(eye_to_mouth, 0.1));
        Self { corners: [sub(sub(c, x), y), add(sub(c, x), y), add(add(c, x), y), sub(add(c, x), y)] }
    }

    /// The script's square from dlib's 68 landmarks (eyes 36–41 and 42–47, mouth corners 48
    /// and 54), given in continuous coordinates.
    pub fn from_landmarks68(lm: &[Point]) -> Result<Self> {
        if lm.len() != 68 {
            return Err(Error::config(format!("{} landmarks given, dlib's model has 68", lm.len())));
        }
        let mean = |r: std::ops::Range<usize>| {
            let n = r.len() as f32;
            lm[r].iter().fold([0.0, 0.0], |s, p| add(s, scale(*p, 1.0 / n)))
        };
        Ok(Self::ffhq(mean(36..42), mean(42..48), scale(add(lm[48], lm[54]), 0.5)))
    }

    pub fn centre(&self) -> Point {
        scale(self.corners.iter().fold([0.0, 0.0], |s, p| add(s, *p)), 0.25)
    }

    /// The script's `qsize`: the square's side.
    pub fn side(&self) -> f32 {
        hypot(sub(self.corners[3], self.corners[0]))
    }

    /// The rotation of the face's horizontal axis (top-left → top-right), in radians,
    /// clockwise on the picture (y down).
    pub fn angle(&self) -> f32 {
        let d = sub(self.corners[3], self.corners[0]);
        d[1].atan2(d[0])
    }

    fn map(&self, f: impl Fn(Point) -> Point) -> Self {
        Self { corners: self.corners.map(f) }
    }

    fn bounds(&self) -> [f32; 4] {
        let xs = self.corners.map(|p| p[0]);
        let ys = self.corners.map(|p| p[1]);
        let (min, max) = (
            |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min),
            |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max),
        );
        [min(xs), min(ys), max(xs), max(ys)]
    }
}

/// An RGB picture in f32, rows top to bottom, channels interleaved.
struct Float {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Float {
    fn of(image: &RgbaImage) -> Self {
        let data = image.data.chunks_exact(4).flat_map(|p| [p[0] as f32, p[1] as f32, p[2] as f32]).collect();
        Self { width: image.width, height: image.height, data }
    }

    fn to_image(&self) -> RgbaImage {
        let data = self
            .data
            .chunks_exact(3)
            .flat_map(|p| {
                [p[0], p[1], p[2]].map(|v| v.round_ties_even().clamp(0.0, 255.0) as u8).into_iter().chain([255])
            })
            .collect();
        RgbaImage { width: self.width, height: self.height, data }
    }
}

/// numpy's `reflect` index (the edge not repeated), for any distance outside.
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// scipy's `reflect` boundary (the edge repeated: d c b a | a b c d).
fn mirror(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - 1 - m }) as usize
}

/// `scipy.ndimage.gaussian_filter(img, [sigma, sigma, 0])`: separable, truncated at 4 σ.
fn gaussian(img: &Float, sigma: f32) -> Float {
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut kernel: Vec<f32> = (-radius..=radius).map(|i| (-0.5 * (i as f32 / sigma).powi(2)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let (w, h) = (img.width, img.height);
    let pass = |src: &[f32], horizontal: bool| {
        let mut out = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f32; 3];
                for (k, weight) in kernel.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) =
                        if horizontal { (mirror(x as isize + d, w), y) } else { (x, mirror(y as isize + d, h)) };
                    let p = &src[(sy * w + sx) * 3..][..3];
                    for c in 0..3 {
                        acc[c] += weight * p[c];
                    }
                }
                out[(y * w + x) * 3..][..3].copy_from_slice(&acc);
            }
        }
        out
    };
    let data = pass(&pass(&img.data, true), false);
    Float { width: w, height: h, data }
}

/// The script's padding step: reflect, blur towards the border, fade to the median colour.
fn pad_reflect(img: &Float, pad: [usize; 4], qsize: f32) -> Float {
    let [left, top, right, bottom] = pad;
    let (w, h) = (img.width + left + right, img.height + top + bottom);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let sy = reflect(y as isize - top as isize, img.height);
        for x in 0..w {
            let sx = reflect(x as isize - left as isize, img.width);
            data.extend_from_slice(&img.data[(sy * img.width + sx) * 3..][..3]);
        }
    }
    let mut out = Float { width: w, height: h, data };
    let frac = |v: usize, p: usize| if p == 0 { f32::INFINITY } else { v as f32 / p as f32 };
    let mask: Vec<f32> = (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let mx = 1.0 - frac(x, left).min(frac(w - 1 - x, right));
                let my = 1.0 - frac(y, top).min(frac(h - 1 - y, bottom));
                mx.max(my)
            })
        })
        .collect();
    let blurred = gaussian(&out, qsize * 0.02);
    for (i, m) in mask.iter().enumerate() {
        let k = (m * 3.0 + 1.0).clamp(0.0, 1.0);
        for c in 0..3 {
            let v = &mut out.data[i * 3 + c];
            *v += (blurred.data[i * 3 + c] - *v) * k;
        }
    }
    let median: Vec<f32> = (0..3)
        .map(|c| {
            let mut v: Vec<f32> = out.data.iter().skip(c).step_by(3).copied().collect();
            let n = v.len();
            let (_, hi, _) = v.select_nth_unstable_by(n / 2, f32::total_cmp);
            let hi = *hi;
            if n % 2 == 1 {
                hi
            } else {
                let lo = v[..n / 2].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                (lo + hi) / 2.0
            }
        })
        .collect();
    for (i, m) in mask.iter().enumerate() {
        let k = m.clamp(0.0, 1.0);
        for (v, med) in out.data[i * 3..i * 3 + 3].iter_mut().zip(&median) {
            *v += (med - *v) * k;
        }
    }
    // The script rounds back to 8 bits here.
    Float::of(&out.to_image())
}

/// PIL's `transform(QUAD, BILINEAR)`: the output's pixel centres mapped bilinearly over the
/// quad, sampled bilinearly with clamped neighbours; outside the picture, black.
fn sample_quad(img: &RgbaImage, quad: &Quad, size: usize) -> RgbaImage {
    let [p0, p1, p2, p3] = quad.corners;
    let s = 1.0 / size as f64;
    let (x0, y0) = (p0[0] as f64, p0[1] as f64);
    let a = [
        x0,
        (p3[0] as f64 - x0) * s,
        (p1[0] as f64 - x0) * s,
        (x0 - p1[0] as f64 + p2[0] as f64 - p3[0] as f64) * s * s,
    ];
    let b = [
        y0,
        (p3[1] as f64 - y0) * s,
        (p1[1] as f64 - y0) * s,
        (y0 - p1[1] as f64 + p2[1] as f64 - p3[1] as f64) * s * s,
    ];
    let (w, h) = (img.width, img.height);
    let mut data = vec![0u8; size * size * 4];
    for oy in 0..size {
        for ox in 0..size {
            let (u, v) = (ox as f64 + 0.5, oy as f64 + 0.5);
            let xin = a[0] + a[1] * u + a[2] * v + a[3] * u * v;
            let yin = b[0] + b[1] * u + b[2] * v + b[3] * u * v;
            let out = &mut data[(oy * size + ox) * 4..][..4];
            out[3] = 255;
            if !(0.0..w as f64).contains(&xin) || !(0.0..h as f64).contains(&yin) {
                continue;
            }
            let (xf, yf) = (xin - 0.5, yin - 0.5);
            let (xi, yi) = (xf.floor(), yf.floor());
            let (dx, dy) = (xf - xi, yf - yi);
            let clip = |i: f64, n: usize| (i.max(0.0) as usize).min(n - 1);
            let (xa, xb, ya, yb) = (clip(xi, w), clip(xi + 1.0, w), clip(yi, h), clip(yi + 1.0, h));
            let px = |x: usize, y: usize, c: usize| img.data[(y * w + x) * 4 + c] as f64;
            for (c, o) in out.iter_mut().take(3).enumerate() {
                let top = px(xa, ya, c) + (px(xb, ya, c) - px(xa, ya, c)) * dx;
                let bottom = px(xa, yb, c) + (px(xb, yb, c) - px(xa, yb, c)) * dx;
                // PIL truncates a bilinear sample when it stores it.
                *o = (top + (bottom - top) * dy).clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbaImage { width: size, height: size, data }
}

/// The face's FFHQ crop at `size × size`. Transparent pixels count as drawn (the page composits
/// them on grey before it gets here).
pub fn align(image: &RgbaImage, quad: &Quad, size: usize) -> Result<RgbaImage> {
    if size == 0 || size > 4096 {
        return Err(Error::config(format!("aligned size {size}: use 1 to 4096 pixels")));
    }
    if quad.corners.iter().flatten().any(|v| !v.is_finite()) || quad.side() < 1.0 {
        return Err(Error::config(format!("the face's square {:?} is degenerate", quad.corners)));
    }
    let transform = size.max(256);
    // The script's steps work on dlib's pixel indices.
    let mut quad = quad.map(|p| [p[0] - 0.5, p[1] - 0.5]);
    let mut qsize = quad.side();
    let mut img = image.clone();
    // Shrink.
    let shrink = (qsize / transform as f32 * 0.5).floor() as usize;
    if shrink > 1 {
        let rsize = |n: usize| ((n as f32 / shrink as f32).round_ties_even() as usize).max(1);
        img = img.resize(rsize(img.width), rsize(img.height));
        quad = quad.map(|p| scale(p, 1.0 / shrink as f32));
        qsize /= shrink as f32;
    }
    // Crop.
    let border = ((qsize * 0.1).round_ties_even() as i64).max(3);
    let [x0, y0, x1, y1] = quad.bounds();
    let crop = [
        (x0.floor() as i64 - border).max(0),
        (y0.floor() as i64 - border).max(0),
        (x1.ceil() as i64 + border).min(img.width as i64),
        (y1.ceil() as i64 + border).min(img.height as i64),
    ];
    if crop[2] <= crop[0] || crop[3] <= crop[1] {
        return Err(Error::config(format!("the face's square {:?} lies outside the picture", quad.corners)));
    }
    if ((crop[2] - crop[0]) as usize) < img.width || ((crop[3] - crop[1]) as usize) < img.height {
        img =
            img.crop(crop[0] as usize, crop[1] as usize, (crop[2] - crop[0]) as usize, (crop[3] - crop[1]) as usize)?;
        quad = quad.map(|p| [p[0] - crop[0] as f32, p[1] - crop[1] as f32]);
    }
    // Pad.
    let [x0, y0, x1, y1] = quad.bounds();
    let mut pad = [
        (-(x0.floor() as i64) + border).max(0),
        (-(y0.floor() as i64) + border).max(0),
        (x1.ceil() as i64 - img.width as i64 + border).max(0),
        (y1.ceil() as i64 - img.height as i64 + border).max(0),
    ];
    if pad.iter().copied().max().unwrap_or(0) > border - 4 {
        let least = (qsize * 0.3).round_ties_even() as i64;
        pad = pad.map(|p| p.max(least));
        if pad.iter().any(|&p| p > 4 * transform as i64) {
            return Err(Error::config(format!("the face's square {:?} lies far outside the picture", quad.corners)));
        }
        img = pad_reflect(&Float::of(&img), pad.map(|p| p as usize), qsize).to_image();
        quad = quad.map(|p| [p[0] + pad[0] as f32, p[1] + pad[1] as f32]);
    }
    // Transform (PIL takes the corners at `quad + 0.5`, continuous again).
    let out = sample_quad(&img, &quad.map(|p| [p[0] + 0.5, p[1] + 0.5]), transform);
    Ok(if size < transform { out.resize(size, size) } else { out })
}

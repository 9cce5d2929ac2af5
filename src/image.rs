//! Image I/O for the core: decoding with limits checked before the full decode, square
//! crops, area resampling and conversion to and from tensors in [-1, 1].

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest image accepted, in pixels (25 MP).
pub const MAX_PIXELS: u64 = 25_000_000;
/// Largest encoded file accepted (30 MB).
pub const MAX_FILE_BYTES: usize = 30 * 1024 * 1024;

/// A square region of an image, in its pixels: the face crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Square {
    pub x: usize,
    pub y: usize,
    pub side: usize,
}

impl Square {
    /// The largest square centred in a `width × height` image.
    pub fn centred(width: usize, height: usize) -> Self {
        let side = width.min(height);
        Self { x: (width - side) / 2, y: (height - side) / 2, side }
    }

    /// Whether the square lies inside a `width × height` image (any numbers: a crop comes
    /// from a person).
    pub fn fits(&self, width: usize, height: usize) -> Result<()> {
        let Square { x, y, side } = *self;
        let inside = |at: usize, extent: usize| at.checked_add(side).is_some_and(|end| end <= extent);
        if side == 0 || !inside(x, width) || !inside(y, height) {
            return Err(Error::Image {
                origin: "crop".into(),
                reason: format!("the square {side}×{side} at ({x}, {y}) is not inside the {width}×{height} image"),
            });
        }
        Ok(())
    }
}

impl std::str::FromStr for Square {
    type Err = Error;
    /// `x,y,side`, as the CLI's `--crop` takes it.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<usize> = s
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::config(format!("crop `{s}`: use x,y,side in pixels")))?;
        match parts[..] {
            [x, y, side] if side > 0 => Ok(Self { x, y, side }),
            _ => Err(Error::config(format!("crop `{s}`: use x,y,side in pixels, with a side of at least 1"))),
        }
    }
}

/// An 8-bit RGBA image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbaImage {
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 || data.len() != width * height * 4 {
            return Err(Error::Image {
                origin: "RGBA buffer".into(),
                reason: format!("{} bytes do not make a {width}×{height} RGBA image", data.len()),
            });
        }
        if (width as u64) * (height as u64) > MAX_PIXELS {
            return Err(Error::Image {
                origin: "RGBA buffer".into(),
                reason: format!("{width}×{height} exceeds {MAX_PIXELS} pixels"),
            });
        }
        Ok(Self { width, height, data })
    }

    /// Decodes a PNG; `origin` names it in errors.
    pub fn decode_png(bytes: &[u8], origin: &str) -> Result<Self> {
        let bad = |reason: String| Error::Image { origin: origin.to_string(), reason };
        if bytes.len() > MAX_FILE_BYTES {
            return Err(bad(format!("{} bytes exceeds the {MAX_FILE_BYTES}-byte limit", bytes.len())));
        }
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(bad("not a PNG image".into()));
        }
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        let (w, h) = (reader.info().width as u64, reader.info().height as u64);
        if w * h > MAX_PIXELS {
            return Err(bad(format!("{w}×{h} exceeds the {MAX_PIXELS}-pixel limit")));
        }
        let size = reader.output_buffer_size().ok_or_else(|| bad("image too large to decode".into()))?;
        let mut buf = vec![0u8; size];
        let frame = reader.next_frame(&mut buf).map_err(|e| bad(format!("corrupt PNG: {e}")))?;
        let buf = &buf[..frame.buffer_size()];
        let px = (w * h) as usize;
        let data: Vec<u8> = match frame.color_type {
            png::ColorType::Rgba => buf.to_vec(),
            png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::GrayscaleAlpha => buf.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0], c[1]]).collect(),
            png::ColorType::Indexed => return Err(bad("indexed PNG was not expanded".into())),
        };
        if data.len() != px * 4 {
            return Err(bad("truncated pixel data".into()));
        }
        Ok(Self { width: w as usize, height: h as usize, data })
    }

    pub fn encode_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().expect("PNG header to memory");
            writer.write_image_data(&self.data).expect("PNG data to memory");
        }
        out
    }

    /// One 8-bit grey channel as a PNG (masks).
    pub fn encode_gray_png(width: usize, height: usize, values: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().expect("PNG header to memory");
            writer.write_image_data(values).expect("PNG data to memory");
        }
        out
    }

    /// The `w × h` region at `(x, y)`, clipped to the image.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Result<Self> {
        if x >= self.width || y >= self.height || w == 0 || h == 0 {
            return Err(Error::Image {
                origin: "crop".into(),
                reason: format!("region {w}×{h} at ({x}, {y}) is outside the {}×{} image", self.width, self.height),
            });
        }
        let (w, h) = (w.min(self.width - x), h.min(self.height - y));
        let mut data = Vec::with_capacity(w * h * 4);
        for row in y..y + h {
            let start = (row * self.width + x) * 4;
            data.extend_from_slice(&self.data[start..start + w * 4]);
        }
        Ok(Self { width: w, height: h, data })
    }

    /// The largest centred square.
    pub fn center_square(&self) -> Self {
        self.crop_square(&Square::centred(self.width, self.height)).expect("a centred square is inside the image")
    }

    /// The square region `square`, which must lie inside the image.
    pub fn crop_square(&self, square: &Square) -> Result<Self> {
        square.fits(self.width, self.height)?;
        self.crop(square.x, square.y, square.side, square.side)
    }

    /// Area (box-filter) resampling to `w × h`: exact means when shrinking by an integer
    /// factor, and a fair average otherwise.
    pub fn resize(&self, w: usize, h: usize) -> Self {
        if w == self.width && h == self.height {
            return self.clone();
        }
        let mut data = vec![0u8; w * h * 4];
        let (sx, sy) = (self.width as f64 / w as f64, self.height as f64 / h as f64);
        for oy in 0..h {
            let (y0, y1) = (oy as f64 * sy, (oy + 1) as f64 * sy);
            for ox in 0..w {
                let (x0, x1) = (ox as f64 * sx, (ox + 1) as f64 * sx);
                let mut acc = [0f64; 4];
                let mut total = 0f64;
                let mut iy = y0.floor() as usize;
                while (iy as f64) < y1 && iy < self.height {
                    let wy = (y1.min(iy as f64 + 1.0) - y0.max(iy as f64)).max(0.0);
                    let mut ix = x0.floor() as usize;
                    while (ix as f64) < x1 && ix < self.width {
                        let wx = (x1.min(ix as f64 + 1.0) - x0.max(ix as f64)).max(0.0);
                        let p = &self.data[(iy * self.width + ix) * 4..][..4];
                        for c in 0..4 {
                            acc[c] += p[c] as f64 * wx * wy;
                        }
                        total += wx * wy;
                        ix += 1;
                    }
                    iy += 1;
                }
                for c in 0..4 {
                    data[(oy * w + ox) * 4 + c] = (acc[c] / total.max(1e-12)).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Self { width: w, height: h, data }
    }

    /// `[1, 3, size, size]` in [-1, 1] (`ToTensor` then `Normalize(0.5, 0.5)`), after a
    /// centre square crop and area resize.
    pub fn to_tensor(&self, size: usize, device: &Device) -> Tensor<4> {
        let planar = self.center_square().resize(size, size).to_planar();
        Tensor::from_data(TensorData::new(planar, [1, 3, size, size]), device)
    }

    /// Planar RGB in [-1, 1], the networks' range (alpha dropped).
    pub fn to_planar(&self) -> Vec<f32> {
        let n = self.width * self.height;
        let mut planar = vec![0f32; 3 * n];
        for i in 0..n {
            for c in 0..3 {
                planar[c * n + i] = self.data[i * 4 + c] as f32 / 127.5 - 1.0;
            }
        }
        planar
    }

    /// From planar RGB in [-1, 1] (one image of a `[B, 3, H, W]` readback).
    pub fn from_planar(planar: &[f32], width: usize, height: usize) -> Self {
        let n = width * height;
        let mut data = vec![255u8; n * 4];
        for i in 0..n {
            for c in 0..3 {
                data[i * 4 + c] = ((planar[c * n + i] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
            }
        }
        Self { width, height, data }
    }
}

//! A procedural face: parameters drawn from a seed, and a renderer that paints them back to
//! front (background, hair, neck, shaded skin, brows, eyes, nose, mouth, fringe) with soft
//! edges. Every part is a named function of the parameters, so a forgery can change one part
//! and re-render.

use crate::rng::SeededRng;

/// A float RGB image in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[f32; 3]>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, fill: [f32; 3]) -> Self {
        Self { width, height, rgb: vec![fill; width * height] }
    }

    /// Blends `color` into pixel `i` with opacity `a`.
    pub fn blend(&mut self, i: usize, color: [f32; 3], a: f32) {
        if a <= 0.0 {
            return;
        }
        let a = a.min(1.0);
        let p = &mut self.rgb[i];
        for c in 0..3 {
            p[c] = p[c] * (1.0 - a) + color[c] * a;
        }
    }

    pub fn to_rgba8(&self) -> crate::image::RgbaImage {
        let mut data = Vec::with_capacity(self.width * self.height * 4);
        for p in &self.rgb {
            data.extend(p.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
            data.push(255);
        }
        crate::image::RgbaImage { width: self.width, height: self.height, data }
    }
}

/// An eye's own parameters, so one eye can differ from the other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eye {
    /// Half-width of the eye opening, in face-width units.
    pub size: f32,
    /// Opening height relative to its width.
    pub openness: f32,
    pub iris: [f32; 3],
    /// Iris radius relative to the opening's half-height.
    pub iris_scale: f32,
}

/// A brow's thickness along its length (inner, middle, outer), in face-height units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brow {
    pub thickness: [f32; 3],
    pub arch: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairStyle {
    Short,
    Long,
    Bald,
    Fringe,
}

/// Everything that makes one synthetic identity under one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceParams {
    /// Face half-width and half-height, in image units (1 = image side).
    pub face_rx: f32,
    pub face_ry: f32,
    /// How much the jaw narrows (0: ellipse).
    pub jaw: f32,
    pub skin: [f32; 3],
    pub hair_style: HairStyle,
    pub hair: [f32; 3],
    pub eyes: [Eye; 2],
    /// Distance between the eye centres, in face-width units.
    pub eye_spacing: f32,
    /// Gaze: iris offset in opening units.
    pub gaze: [f32; 2],
    pub brows: [Brow; 2],
    pub brow_color: [f32; 3],
    pub nose_length: f32,
    pub nose_width: f32,
    pub mouth_width: f32,
    /// Positive: corners up.
    pub smile: f32,
    pub lips: [f32; 3],
    /// Light direction (unit, in the image plane plus depth) and strength.
    pub light: [f32; 3],
    pub light_strength: f32,
    pub background: [[f32; 3]; 2],
    /// Pose and scale jitter: centre offset, in-plane rotation (radians), scale.
    pub center: [f32; 2],
    pub roll: f32,
    pub scale: f32,
    /// Camera: sensor noise σ (in [0, 1] units), blur radius (pixels), JPEG-like quality step.
    pub noise: f32,
    pub blur: f32,
    pub quantisation: f32,
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn pick<T: Copy>(rng: &mut SeededRng, options: &[T]) -> T {
    options[rng.range(0, options.len() as u64) as usize]
}

impl FaceParams {
    /// A face drawn from `seed`: the same seed gives the same face, bit for bit.
    pub fn sample(seed: u64) -> Self {
        let mut r = SeededRng::new(seed ^ 0xFACE_5EED);
        let u = |r: &mut SeededRng, lo: f32, hi: f32| lo + (hi - lo) * r.uniform();
        // Skin tones from very light to very dark (sRGB), with a little warmth jitter.
        let (light, dark) = ([0.96, 0.80, 0.69], [0.30, 0.19, 0.13]);
        let tone = r.uniform();
        let mut skin = lerp3(light, dark, tone * tone.sqrt());
        skin[0] += u(&mut r, -0.03, 0.03);
        skin[2] += u(&mut r, -0.03, 0.02);
        let hair = pick(
            &mut r,
            &[
                [0.08, 0.06, 0.05],
                [0.30, 0.18, 0.10],
                [0.55, 0.38, 0.20],
                [0.85, 0.70, 0.42],
                [0.60, 0.22, 0.10],
                [0.62, 0.62, 0.62],
            ],
        );
        let hair_style = pick(&mut r, &[HairStyle::Short, HairStyle::Long, HairStyle::Bald, HairStyle::Fringe]);
        let iris = pick(
            &mut r,
            &[[0.35, 0.22, 0.12], [0.20, 0.35, 0.55], [0.30, 0.45, 0.30], [0.45, 0.35, 0.20], [0.15, 0.10, 0.08]],
        );
        let eye = Eye {
            size: u(&mut r, 0.13, 0.18),
            openness: u(&mut r, 0.38, 0.55),
            iris,
            iris_scale: u(&mut r, 0.75, 0.95),
        };
        let brow = Brow { thickness: [u(&mut r, 0.018, 0.03); 3], arch: u(&mut r, 0.0, 0.04) };
        let brow_color = lerp3(hair, [0.1, 0.08, 0.06], 0.5);
        let angle = u(&mut r, -2.4, -0.7);
        let lz = u(&mut r, 0.5, 1.0);
        let n = (1.0 + lz * lz).sqrt();
        let bg_hue = [r.uniform(), r.uniform(), r.uniform()];
        Self {
            face_rx: u(&mut r, 0.24, 0.30),
            face_ry: u(&mut r, 0.31, 0.37),
            jaw: u(&mut r, 0.0, 0.25),
            skin,
            hair_style,
            hair,
            eyes: [eye, eye],
            eye_spacing: u(&mut r, 0.66, 0.80),
            gaze: [u(&mut r, -0.3, 0.3), u(&mut r, -0.15, 0.15)],
            brows: [brow, brow],
            brow_color,
            nose_length: u(&mut r, 0.22, 0.32),
            nose_width: u(&mut r, 0.12, 0.18),
            mouth_width: u(&mut r, 0.32, 0.46),
            smile: u(&mut r, -0.02, 0.06),
            lips: lerp3(skin, [0.62, 0.25, 0.28], u(&mut r, 0.35, 0.7)),
            light: [angle.cos() / n, angle.sin() / n, lz / n],
            light_strength: u(&mut r, 0.2, 0.5),
            background: [
                lerp3(bg_hue, [0.5, 0.5, 0.5], 0.4),
                lerp3([r.uniform(), r.uniform(), r.uniform()], [0.3, 0.3, 0.3], 0.5),
            ],
            center: [0.5 + u(&mut r, -0.03, 0.03), 0.52 + u(&mut r, -0.03, 0.03)],
            roll: u(&mut r, -0.08, 0.08),
            scale: u(&mut r, 0.92, 1.06),
            noise: u(&mut r, 0.004, 0.02),
            blur: u(&mut r, 0.0, 0.7),
            quantisation: u(&mut r, 0.0, 0.06),
        }
    }
}

/// Smooth 0 → 1 as `d` goes from `edge` to `edge − width` (inside is negative distance).
fn inside(d: f32, width: f32) -> f32 {
    (0.5 - d / width).clamp(0.0, 1.0)
}

/// The height of the mouth's centre line, in face half-heights below the face centre.
const MOUTH_Y: f32 = 0.55;

/// Where a pixel lies in the face's own frame: x across (face half-widths), y down (face
/// half-heights), both 0 at the face centre.
#[derive(Debug, Clone, Copy)]
pub struct FacePoint {
    pub x: f32,
    pub y: f32,
}

impl FaceParams {
    /// The same person seen again: everything that belongs to the shot (light, background,
    /// pose, expression, gaze, camera) drawn from `capture_seed`, everything that belongs to
    /// the person (face shape, skin, hair, eyes, brows, nose, mouth, lips) kept.
    pub fn recaptured(&self, capture_seed: u64) -> Self {
        let shot = Self::sample(capture_seed);
        Self {
            gaze: shot.gaze,
            smile: shot.smile,
            light: shot.light,
            light_strength: shot.light_strength,
            background: shot.background,
            center: shot.center,
            roll: shot.roll,
            scale: shot.scale,
            noise: shot.noise,
            blur: shot.blur,
            quantisation: shot.quantisation,
            ..self.clone()
        }
    }

    /// The face-frame coordinates of image pixel (px, py) for a `size`-pixel image.
    pub fn to_face(&self, px: usize, py: usize, size: usize) -> FacePoint {
        let (u, v) =
            ((px as f32 + 0.5) / size as f32 - self.center[0], (py as f32 + 0.5) / size as f32 - self.center[1]);
        let (s, c) = self.roll.sin_cos();
        let (ru, rv) = ((c * u + s * v) / self.scale, (-s * u + c * v) / self.scale);
        FacePoint { x: ru / self.face_rx, y: rv / self.face_ry }
    }

    /// Signed distance-like value of the face outline (negative inside), in face units.
    pub fn face_sdf(&self, p: FacePoint) -> f32 {
        // The jaw narrows the lower half.
        let narrow = if p.y > 0.0 { 1.0 - self.jaw * p.y * p.y } else { 1.0 };
        let x = p.x / narrow.max(0.3);
        (x * x + p.y * p.y).sqrt() - 1.0
    }

    /// The inner face (brows to chin, cheek to cheek) a face swap replaces, as a soft mask.
    pub fn inner_face(&self, p: FacePoint, feather: f32) -> f32 {
        let d = ((p.x / 0.78).powi(2) + ((p.y - 0.12) / 0.8).powi(2)).sqrt() - 1.0;
        inside(d, feather)
    }

    /// Where a face-frame point lies in a `size`-pixel image, in continuous coordinates
    /// (pixel `i` spans `[i, i + 1)`): the inverse of [`FaceParams::to_face`].
    pub fn to_image(&self, p: FacePoint, size: usize) -> [f32; 2] {
        let (a, b) = (p.x * self.face_rx * self.scale, p.y * self.face_ry * self.scale);
        let (s, c) = self.roll.sin_cos();
        [(c * a - s * b + self.center[0]) * size as f32, (s * a + c * b + self.center[1]) * size as f32]
    }

    /// The points the FFHQ alignment is made from, in a `size`-pixel image: the eye centres
    /// (image left first) and the mean of the mouth's corners.
    pub fn alignment_points(&self, size: usize) -> [[f32; 2]; 3] {
        let eye = |side| {
            let [x, y] = self.eye_center(side);
            self.to_image(FacePoint { x, y }, size)
        };
        // The lips' centre line at the corners (t = ±1 in `paint_mouth`), whose mean is on the axis.
        let mouth = self.to_image(FacePoint { x: 0.0, y: MOUTH_Y - self.smile * 2.0 }, size);
        [eye(0), eye(1), mouth]
    }

    /// Eye centre `side` (0: image left), in face units.
    pub fn eye_center(&self, side: usize) -> [f32; 2] {
        let dx = self.eye_spacing * 0.5 * if side == 0 { -1.0 } else { 1.0 };
        [dx, -0.12]
    }

    pub fn render(&self, size: usize) -> Canvas {
        let mut img = Canvas::new(size, size, self.background[0]);
        let px = 1.0 / (size as f32 * self.face_rx * self.scale);
        for py in 0..size {
            for pxl in 0..size {
                let i = py * size + pxl;
                let t = py as f32 / size as f32;
                img.rgb[i] = lerp3(self.background[0], self.background[1], t);
                let p = self.to_face(pxl, py, size);
                self.paint_pixel(&mut img, i, p, px);
            }
        }
        img
    }

    fn paint_pixel(&self, img: &mut Canvas, i: usize, p: FacePoint, px: f32) {
        let aa = 1.5 * px;
        // Hair behind the head.
        if self.hair_style == HairStyle::Long {
            let d = ((p.x / 1.3).powi(2) + ((p.y - 0.25) / 1.35).powi(2)).sqrt() - 1.0;
            img.blend(i, self.hair, inside(d, aa));
        }
        // Neck.
        let neck = (p.x.abs() - 0.45).max(0.6 - p.y);
        img.blend(i, lerp3(self.skin, [0.0, 0.0, 0.0], 0.18), inside(neck, aa));
        // Head, shaded as an ellipsoid lit from `light`.
        let face = self.face_sdf(p);
        let a = inside(face, aa);
        if a > 0.0 {
            let nz = (1.0 - (p.x * p.x + p.y * p.y).min(1.0)).sqrt();
            let lambert = (p.x * self.light[0] + p.y * self.light[1] + nz * self.light[2]).max(0.0);
            let shade = 1.0 - self.light_strength + self.light_strength * 1.25 * lambert;
            let skin = self.skin.map(|c| (c * shade).min(1.0));
            img.blend(i, skin, a);
            // Cheek warmth.
            let cheek = (((p.x.abs() - 0.55) / 0.22).powi(2) + ((p.y - 0.2) / 0.16).powi(2)).sqrt() - 1.0;
            img.blend(i, [0.85, 0.45, 0.42], 0.12 * inside(cheek, 0.6));
        }
        self.paint_brows(img, i, p, aa);
        for side in 0..2 {
            self.paint_eye(img, i, p, side, aa);
        }
        self.paint_nose(img, i, p, aa);
        self.paint_mouth(img, i, p, aa);
        // Hair on top of the head.
        let top = match self.hair_style {
            HairStyle::Bald => f32::MAX,
            HairStyle::Fringe => (((p.x / 1.08).powi(2) + ((p.y + 0.18) / 0.95).powi(2)).sqrt() - 1.0)
                .max(p.y + 0.42 + 0.05 * (p.x * 9.0).sin()),
            _ => (((p.x / 1.1).powi(2) + ((p.y + 0.12) / 1.0).powi(2)).sqrt() - 1.0).max(p.y + 0.62 - 0.25 * p.x * p.x),
        };
        img.blend(i, self.hair, inside(top, aa));
    }

    fn paint_brows(&self, img: &mut Canvas, i: usize, p: FacePoint, aa: f32) {
        for side in 0..2 {
            let [ex, ey] = self.eye_center(side);
            let b = self.brows[side];
            let half = self.eyes[side].size * 1.15 / self.face_rx * self.face_rx;
            let t = (p.x - ex) / half; // −1 … 1 along the brow
            if t.abs() > 1.0 {
                continue;
            }
            // Thickness from inner to outer end (the inner end is nearer the nose).
            let along = if side == 0 { -t } else { t };
            let k = (along + 1.0) * 0.5;
            let th = if k < 0.5 {
                b.thickness[0] + (b.thickness[1] - b.thickness[0]) * k * 2.0
            } else {
                b.thickness[1] + (b.thickness[2] - b.thickness[1]) * (k - 0.5) * 2.0
            };
            let cy = ey - 0.17 - b.arch * (1.0 - t * t) * 2.0;
            let d = (p.y - cy).abs() - th / self.face_ry * 0.5 * 2.0;
            let end = t.abs() - 1.0;
            img.blend(i, self.brow_color, inside(d.max(end * 0.2), aa));
        }
    }

    fn paint_eye(&self, img: &mut Canvas, i: usize, p: FacePoint, side: usize, aa: f32) {
        let e = self.eyes[side];
        let [ex, ey] = self.eye_center(side);
        let rx = e.size;
        let ry = e.size * e.openness * self.face_rx / self.face_ry;
        let (dx, dy) = ((p.x - ex) / rx, (p.y - ey) / ry);
        let opening = (dx * dx + dy * dy).sqrt() - 1.0;
        let a = inside(opening, aa / rx);
        if a <= 0.0 {
            return;
        }
        img.blend(i, [0.93, 0.92, 0.90], a);
        let (ix, iy) = (dx - self.gaze[0], (dy - self.gaze[1]) * ry / rx);
        let r = (ix * ix + iy * iy).sqrt();
        let iris_r = e.iris_scale * e.openness;
        img.blend(i, e.iris, a * inside(r - iris_r, aa / rx));
        img.blend(i, [0.03, 0.03, 0.03], a * inside(r - iris_r * 0.45, aa / rx));
        // Upper lid line.
        img.blend(i, [0.15, 0.1, 0.08], a * inside((opening + 0.12).abs() - 0.12, aa / rx) * (dy < 0.0) as u8 as f32);
    }

    fn paint_nose(&self, img: &mut Canvas, i: usize, p: FacePoint, aa: f32) {
        let top = -0.05;
        let bottom = top + self.nose_length / self.face_ry * self.face_rx;
        let w = self.nose_width;
        if p.y > top && p.y < bottom + 0.06 {
            // A shaded ridge on the side away from the light, and nostrils at the base.
            let side = if self.light[0] > 0.0 { -1.0 } else { 1.0 };
            let ridge = (p.x - side * w * 0.35).abs() - w * 0.12;
            let k = ((p.y - top) / (bottom - top)).clamp(0.0, 1.0);
            img.blend(i, self.skin.map(|c| c * 0.72), 0.35 * k * inside(ridge, aa * 3.0));
            for s in [-1.0f32, 1.0] {
                let d = (((p.x - s * w * 0.3) / (w * 0.22)).powi(2) + ((p.y - bottom) / 0.025).powi(2)).sqrt() - 1.0;
                img.blend(i, self.skin.map(|c| c * 0.35), 0.8 * inside(d, aa / (w * 0.22)));
            }
        }
    }

    fn paint_mouth(&self, img: &mut Canvas, i: usize, p: FacePoint, aa: f32) {
        let cy = MOUTH_Y;
        let half = self.mouth_width * 0.5 / self.face_rx * self.face_rx;
        let t = p.x / half;
        if t.abs() > 1.05 {
            return;
        }
        let curve = cy - self.smile * 2.0 * t * t;
        let upper = curve - 0.05 * (1.0 - t * t).max(0.0);
        let lower = curve + 0.09 * (1.0 - t * t).max(0.0);
        let d = (upper - p.y).max(p.y - lower).max(t.abs() - 1.0);
        img.blend(i, self.lips, inside(d, aa));
        img.blend(
            i,
            self.lips.map(|c| c * 0.45),
            inside((p.y - curve).abs() - 0.008, aa) * inside(t.abs() - 1.0, 0.05),
        );
    }
}

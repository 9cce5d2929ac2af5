//! Area under the ROC curve of a score map against a binary mask: how well the map ranks the
//! pixels a forgery altered above those it did not (0.5 = chance, 1 = perfect).

/// AUROC of `scores` for the positives in `labels`, by the Mann–Whitney U statistic with ties
/// counted half. `None` when either class is empty.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks (1-based) over runs of equal scores.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * rank;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// A mask of `size × size` pixels from a larger (or equal) square one: a pixel is altered if any
/// pixel of its block was.
pub fn downsample_mask(mask: &[bool], side: usize, size: usize) -> Vec<bool> {
    let mut out = vec![false; size * size];
    for y in 0..side {
        for x in 0..side {
            if mask[y * side + x] {
                out[(y * size / side) * size + x * size / side] = true;
            }
        }
    }
    out
}

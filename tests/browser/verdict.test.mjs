// The headline of a result: the detector's verdict on the image itself first, then on its
// reconstruction, then on the counterfactual; a face already called real is not explained as
// if it had been flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verdict } from '../../www/results.js';

const report = (input, reconstruction, counterfactual, success, steps = 12) => ({
  result: { detector: 'xception', success, steps, first_success_step: success ? steps : null, scores: [{ detector: 'xception', input, reconstruction, counterfactual }, { detector: 'resnet', input: 0.9, reconstruction: 0.9, counterfactual: 0.9 }] },
});

test('the verdict leads with the image, then inversion, then the search', () => {
  const flagged = verdict(report(0.98, 0.97, 0.40, true));
  assert.equal(flagged.text, 'xception calls the input fake (P(fake) 0.98); its reconstruction fake (0.97); the counterfactual real (0.40) after 12 steps — the detector now calls it real.');
  // The default sample as the zoo sees it: the input is real already, its reconstruction is not.
  const real = verdict(report(0.44, 0.98, 0.40, true));
  assert.match(real.text, /^xception calls the input real \(P\(fake\) 0\.44\); its reconstruction fake \(0\.98\)/);
  assert.match(real.text, /The input itself is called real: there is nothing to explain in it\. What follows explains the reconstruction’s verdict/);
  const missed = verdict(report(0.9, 0.9, 0.7, false, 200));
  assert.match(missed.text, /after 200 steps the counterfactual is still called fake \(0\.70\) — goal not reached\.$/);
  assert.doesNotMatch(missed.text, /now calls it real/);
  const nothing = verdict(report(0.2, 0.3, 0.3, true, 0));
  assert.match(nothing.text, /the reconstruction already meets the goal, so the search had nothing to remove\.$/);
  // Called real but short of the goal's margin (κ): the search runs, and the page says what it did.
  const margin = verdict(report(0.2, 0.45, 0.39, true, 7));
  assert.match(margin.text, /the counterfactual real \(0\.39\) after 7 steps — the detector now calls it real\.$/);
  assert.doesNotMatch(nothing.text, /nothing to explain in it/, 'only a flagged reconstruction of a real input gets that note');
});

"""The mistakes the hidden suites recognise: one stable key each, with its label and the notebook
section to reread. A failed check names one by key (course.checking.Mismatch); the report
carries the key, and every page (feedback, Gradescope, the class report) shows the label.

Keys are stable: a class report compares them across learners and runs. A suite names a
mistake with ``mistake(key, text)``: `text` is how this check's output looked (shown to the
learner), the key what the class report counts.
"""
from __future__ import annotations

from dataclasses import dataclass

from course.exercises import where_to_look


@dataclass(frozen=True)
class Mistake:
    label: str
    reread: str = ""  # "notebook 06_rope, section 6.7 ...", when not the section of the exercise it is seen in


MISTAKES: dict[str, Mistake] = {
    # RoPE, positions, attention, ALiBi, Shaw and T5, learned tables, scaling
    'pairing-convention': Mistake('pairing convention swapped: interleaved (2k, 2k+1) vs half-split (k, k + d/2)'),
    'pairing-mixed': Mistake("pairing conventions mixed: one convention's cos/sin table with the other's rotation",
                             'notebook 06_rope, section 6.6 Two ways to pair features'),
    'rotation-direction': Mistake('rotating the other way (sign of the sine terms)'),
    'matrix-transposed': Mistake('rotation matrix transposed'),
    'rotary-dim': Mistake('frequencies over the head dimension d instead of rotary_dim',
                          'notebook 06_rope, section 6.7 Partial rotary'),
    'rotary-last-features': Mistake('partial rotary applied to the wrong features: the last rotary_dim instead of the first',
                                    'notebook 06_rope, section 6.7 Partial rotary'),
    'rotary-pairs-whole-head': Mistake('partial rotary with pairs (k, k + d/2) over the whole head instead of '
                                       '(k, k + rotary_dim/2)', 'notebook 06_rope, section 6.7 Partial rotary'),
    'exponent-k-over-d': Mistake('frequency exponent k/d instead of 2k/d (k counts pairs)'),
    'frequency-vs-wavelength': Mistake('frequencies, angular frequencies and wavelengths confused'),
    'half-precision': Mistake('angles computed in half precision',
                              'notebook 06_rope, section 6.11 Float precision at long positions'),
    'sin-cos-swapped': Mistake('sine and cosine swapped'),
    'default-argument': Mistake('an argument not passed on (its default used instead)'),
    'wrong-defaults': Mistake("default arguments other than the contract's"),
    'positions-restart': Mistake('positions restarting at 0 for new tokens (decoding with a cache)'),
    'positions-inconsistent': Mistake('prefill and decode (or queries and keys) numbered differently: padding counted in one, not the other'),
    'padding-not-masked': Mistake('padding keys not masked (the attention_mask must remove them)'),
    'cache-order': Mistake('new keys and values placed before the cached ones (they go after)'),
    'cache-rerotated': Mistake('cached keys rotated again (a RoPE cache holds them already rotated)'),
    'positions-ignored': Mistake('positions ignored: 0, 1, 2, ... used instead'),
    'padding-ids': Mistake('padding given position ids (it must get 0 and not shift real tokens)'),
    'count-from-one': Mistake('positions counted from 1 instead of 0'),
    'counts-padding': Mistake('padding counted as tokens'),
    'off-by-one': Mistake('next position off by one'),
    'ids-clamped': Mistake('out-of-range ids clamped or wrapped silently instead of rejected'),
    'interpolation': Mistake('position interpolation ratio or range wrong'),
    'offset-sign': Mistake('relative offset with the wrong sign (query - key vs key - query)'),
    'scale-by-d': Mistake('scores divided by d instead of sqrt(d)',
                          'notebook 01_intuition, section 1.1 Attention without positions'),
    'not-scaled': Mistake('scores not divided by sqrt(d)',
                          'notebook 01_intuition, section 1.1 Attention without positions'),
    'softmax-over-queries': Mistake('softmax over the queries instead of the keys',
                                    'notebook 01_intuition, section 1.1 Attention without positions'),
    'mask-after-softmax': Mistake('mask applied after the softmax, or by multiplying (use -inf before it)'),
    'mask-inverted': Mistake("mask inverted (True must mean 'may attend')"),
    'mask-strict': Mistake("causal mask excludes the query's own position"),
    'queries-at-start': Mistake('queries placed at the first positions (with a cache they are the last)',
                                'notebook 01_intuition, section 1.5 Causal decoding'),
    'gap-reduction': Mistake('shift gap reduced wrongly (it is the largest absolute difference)'),
    'gap-queries-only': Mistake('only the query positions shifted'),
    'alibi-extra-slopes': Mistake('ALiBi slopes: the wrong extra slopes for a head count that is not a power of two '
                                  '(the paper takes the 1st, 3rd, 5th, ... slopes of the next power of two)'),
    'alibi-sorted': Mistake("ALiBi slopes sorted (the paper's order matters)"),
    'alibi-power-of-two': Mistake('ALiBi slopes: the power-of-two formula used for every head count',
                                  'notebook 07_alibi, section 7.2 Slopes per head'),
    'alibi-bias-sign': Mistake('positive ALiBi bias: far keys must be penalised',
                               'notebook 07_alibi, section 7.3 The bias matrix'),
    'alibi-signed-distance': Mistake('signed distance without the absolute value'),
    'alibi-no-mask': Mistake('no causal mask with ALiBi',
                             'notebook 07_alibi, section 7.5 Masks stay apart from the bias'),
    'alibi-causal-ignored': Mistake('causal=False ignored: a causal mask applied anyway',
                                    'notebook 07_alibi, section 7.4 Causal versus symmetric bias'),
    'alibi-no-bias': Mistake('attention without the ALiBi bias', 'notebook 07_alibi, section 7.3 The bias matrix'),
    'shaw-no-plus-k': Mistake('relative index without the +K offset',
                              'notebook 05_relative, section 5.2 Shaw relative keys'),
    'shaw-no-clip': Mistake('relative offsets not clipped to [-K, K] before indexing the table'),
    'shaw-no-rel-v': Mistake('attention without rel_v'),
    't5-halving': Mistake('T5 buckets: num_buckets not halved per side'),
    't5-cap': Mistake('T5 buckets: log part not capped'),
    't5-exact-range': Mistake('T5 buckets: exact range off by one'),
    't5-zero-side': Mistake('T5 buckets: offset 0 on the wrong side'),
    't5-bidirectional': Mistake('T5 buckets: bidirectional ignored or not passed on'),
    'resize-nearest': Mistake('table resized by nearest neighbour instead of interpolation'),
    'resize-corners': Mistake('resize coordinates: the end rows must stay at the ends'),
    'pi-direction': Mistake('position interpolation: frequencies not divided by the factor (multiplied, unscaled, base scaled instead)'),
    'ntk-exponent': Mistake('NTK base: the exponent is d/(d-2)',
                            'notebook 08_scaling, section 8.3 NTK-aware base scaling'),
    'dynamic-ntk': Mistake('dynamic NTK: the length term (max(seq_len, L), minus factor - 1) or static scaling'),
    'yarn-ramp': Mistake('YaRN ramp: which pairs keep, interpolate or blend'),
    'yarn-attention-factor': Mistake('YaRN attention factor (0.1 ln s + 1 on cos and sin)'),
    'llama3-bands': Mistake('Llama 3.1 scaling: bands, thresholds or smooth band wrong'),
    'llama3-smoothing': Mistake('Llama 3.1 scaling: smoothing weight reversed (smooth where 1 - smooth belongs)'),
    'config-kind-and-size': Mistake("rope config: the kind ('rope_type' or legacy 'type') or the rotary size (head_dim, partial_rotary_factor) read wrongly"),
    'config-lengths': Mistake("rope config: max_position_embeddings confused with original_max_position_embeddings (or LongRoPE's long factors used at short lengths)"),
    'config-mscale': Mistake("rope config: YaRN's mscale / mscale_all_dim ignored in the attention scaling"),
    # named by a check's own message
    'inverse-permutation': Mistake('the inverse permutation (half-split to interleaved)'),
    'offset-direction': Mistake('offset matrix moves positions the wrong way'),
    'nan-rows': Mistake('NaN rows: a query with no allowed key'),
    'half-precision-scores': Mistake('scores and softmax computed in half precision (compute them in float32)'),
    'init': Mistake('learned table initialised wrongly (normal, mean 0, std 0.02)'),
    'last-row': Mistake('valid ids rejected (0 .. max_len - 1, the last row included)'),
    'no-gradient': Mistake('no gradient reaches the table'),
    'heads-last': Mistake('head axis last instead of first'),
    'not-a-pair': Mistake('returns one value where a pair is expected'),
    'squeezed': Mistake('result squeezed (one row per sequence expected)'),
    'misdiagnosed': Mistake("a zoo specimen diagnosed with a bug its behaviour does not show (or 'none' for one it does)"),
    # of form rather than idea (any exercise)
    'no-value-error': Mistake('bad arguments not rejected with a ValueError naming the argument'),
    'wrong-dtype': Mistake('wrong output dtype (it should follow the input, or the contract)'),
    'in-place': Mistake('changes its inputs in place'),
    'device': Mistake("helper tensors made on the CPU, not on the input's device"),
    'python-float': Mistake('returns a tensor where a Python float is expected'),
    'not-parameter': Mistake('weight is not an nn.Parameter'),
}


def mistake(key: str, text: str) -> tuple[str, str]:
    """A closest_mistake candidate's name: (key, how this check's output looked)."""
    if key not in MISTAKES:
        raise KeyError(f"unknown mistake key {key!r} (course/grading/mistakes.py)")
    return key, text


def described(key: str, exercise_id: str) -> dict:
    """{key, label, where} of a recognised mistake, as the report carries it."""
    known = MISTAKES[key]
    return {"key": key, "label": known.label, "where": known.reread or where_to_look(exercise_id)}

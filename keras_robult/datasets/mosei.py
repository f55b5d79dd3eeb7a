"""CMU-MOSEI (Zadeh et al. 2018): 22,856 opinion video clips, sentiment in
[-3, 3], text / audio / vision features.

Expected files (not downloadable from here; get them from the Multimodal
Transformer (MulT) release, github.com/yaohungt/Multimodal-Transformer,
or from MMSA, github.com/thuiar/MMSA):

- MulT: `mosei_senti_data.pkl` (word-aligned, `aligned=True`) or
  `mosei_senti_data_noalign.pkl`: a dict with `train` / `valid` / `test`, each a
  dict with `text` `(N, 50, 300)` GloVe, `audio` `(N, 50, 74)` COVAREP,
  `vision` `(N, 50, 35)` Facet (aligned shapes), `labels` `(N, 1, 1)` in
  [-3, 3] and `id`.
- MMSA: `aligned_50.pkl` / `unaligned_50.pkl`, the same split keys, labels
  under `regression_labels`, optional `audio_lengths` / `vision_lengths`.

Official splits: 16,326 / 1,871 / 4,659 samples.

Paper (Robult, Table 1, 5 % labels), MAE / Corr / F1 / Acc:
text 0.784 / 0.459 / 0.739 / 0.732; audio 0.825 / 0.221 / 0.679 / 0.650;
vision 0.826 / 0.201 / 0.647 / 0.632; full 0.779 / 0.504 / 0.744 / 0.741.
"""

from keras_robult.datasets._sentiment import make_loader

FILES = {
    True: ("mosei_senti_data.pkl", "aligned_50.pkl"),
    False: ("mosei_senti_data_noalign.pkl", "unaligned_50.pkl"),
}
ALIGNED_SHAPES = {"text": (50, 300), "audio": (50, 74), "vision": (50, 35)}


load_data = make_loader("CMU-MOSEI", FILES, ALIGNED_SHAPES)

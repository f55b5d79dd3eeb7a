"""CMU-MOSI (Zadeh et al. 2016): 2,199 opinion video clips, sentiment in
[-3, 3], text / audio / vision features.

Expected files (not downloadable from here; get them from the Multimodal
Transformer (MulT) release, github.com/yaohungt/Multimodal-Transformer,
or from MMSA, github.com/thuiar/MMSA):

- MulT: `mosi_data.pkl` (word-aligned, `aligned=True`) or
  `mosi_data_noalign.pkl`: a dict with `train` / `valid` / `test`, each a
  dict with `text` `(N, 50, 300)` GloVe, `audio` `(N, 50, 5)` COVAREP,
  `vision` `(N, 50, 20)` Facet (aligned shapes), `labels` `(N, 1, 1)` in
  [-3, 3] and `id`.
- MMSA: `aligned_50.pkl` / `unaligned_50.pkl`, the same split keys, labels
  under `regression_labels`, optional `audio_lengths` / `vision_lengths`.

Official splits: 1,284 / 229 / 686 samples.

Paper (Robult, Table 1, 5 % labels), MAE / Corr / F1 / Acc:
text 1.397 / 0.144 / 0.578 / 0.569; audio 1.415 / 0.085 / 0.539 / 0.535;
vision 1.425 / 0.086 / 0.593 / 0.522; full 1.392 / 0.247 / 0.657 / 0.630.
"""

from keras_robult.datasets._sentiment import make_loader

FILES = {
    True: ("mosi_data.pkl", "aligned_50.pkl"),
    False: ("mosi_data_noalign.pkl", "unaligned_50.pkl"),
}
ALIGNED_SHAPES = {"text": (50, 300), "audio": (50, 5), "vision": (50, 20)}


load_data = make_loader("CMU-MOSI", FILES, ALIGNED_SHAPES)

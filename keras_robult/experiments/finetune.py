"""End-to-end training of the image+text recipes (`--finetune`): every
method of the comparison with its keras-hub backbones trainable, fed by
the streaming pipeline, inside the same protocol (splits, seeds, subsets,
missing-rate curve, resume) as the frozen-feature path.

The protocol works on arrays; here they are record numbers. Each modality
column of `x` holds the row of the sample in `FinetuneSource.records`, so
the protocol's splits, labeled subsets and modality masks select records,
and a fine-tuned method streams those records' images and texts.
"""

import dataclasses
import functools
import warnings

import keras
import numpy as np

from keras_robult.backbones.features import compute_features
from keras_robult.backbones.presets import load_backbone, load_tokenizer
from keras_robult.backbones.surgery import replace_encoders
from keras_robult.data.image_text_pipeline import image_text_dataset
from keras_robult.data.image_text_records import ImageTextRecords
from keras_robult.utils.validation import MASK_KEY

MODALITIES = ("image", "text")


@dataclasses.dataclass(eq=False)
class FinetuneSource:
    """What a fine-tuned method needs besides the protocol's arrays.

    Args:
        records: `ImageTextRecords` of every sample, in the order of the
            protocol's arrays (train, validation, test).
        text_preset, image_preset: keras-hub presets (folders or names),
            loaded afresh for every (method, seed).
        image_size: `(height, width)`.
        sequence_length: int, token ids per text.
        statistics: dict modality -> `(mean, std)` of the frozen
            backbones' pooled features on the training split: the
            standardisation in front of each modality's MLP encoder.
        widths: dict modality -> pooled width of its backbone.
        learning_rate: float, Adam learning rate of the whole model
            (backbones included).
        batch_size: int, batch size of the feature passes in evaluation.
        augment: bool, random horizontal flips of the training images.
    """

    records: object
    text_preset: str
    image_preset: str
    image_size: tuple
    sequence_length: int
    statistics: dict
    widths: dict
    learning_rate: float = 1e-4
    batch_size: int = 64
    augment: bool = True
    _tokenizer: object = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.image_size = tuple(self.image_size)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.text_preset)
        return self._tokenizer

    def backbone(self, name):
        """A trainable `PooledBackbone` with the preset's weights."""
        preset = self.image_preset if name == "image" else self.text_preset
        backbone = load_backbone(preset, name)
        backbone.trainable = True  # but its unused pooler (PooledBackbone)
        return backbone

    def raw_shape(self, name):
        """Per-sample shape of a modality as the pipeline yields it."""
        if name == "image":
            return self.image_size + (3,)
        return (self.sequence_length,)

    def select(self, x, is_labeled=None):
        """The records of the rows in `x` with `x`'s modality mask applied
        (a masked image or text becomes an absent one) and, if given, the
        labeled flags."""
        rows = np.asarray(x[MODALITIES[0]]).reshape(-1).astype("int64")
        mask = np.asarray(x[MASK_KEY])
        part = self.records.subset(rows)
        return ImageTextRecords(
            part.ids,
            np.where(mask[:, 0] > 0, part.image_paths, ""),
            np.where(mask[:, 1] > 0, part.texts, ""),
            part.labels,
            part.classes,
            part.is_labeled if is_labeled is None else is_labeled,
        )

    def dataset(
        self, records, batch_size, training=False, seed=0, modality_dropout=0.0
    ):
        """The streaming pipeline over `records` (`modality_dropout`: see
        `image_text_dataset`)."""
        augmentation = None
        if training and self.augment:
            augmentation = keras.layers.RandomFlip("horizontal", seed=seed)
        return image_text_dataset(
            records,
            image_size=self.image_size,
            batch_size=batch_size,
            tokenizer=self.tokenizer,
            sequence_length=self.sequence_length,
            training=training,
            seed=seed,
            augmentation=augmentation,
            drop_remainder=training,
            modality_dropout=modality_dropout if training else 0.0,
        )


def index_arrays(count, modality_mask=None, offset=0):
    """The protocol's `x` of `count` records: each modality column holds
    the record rows (from `offset`), plus `modality_mask` if given."""
    rows = offset + np.arange(count, dtype="int64")[:, None]
    x = {name: rows for name in MODALITIES}
    if modality_mask is not None:
        x[MASK_KEY] = modality_mask
    return x


class FinetuneMixin:
    """Turns a protocol `Method` into its end-to-end version: each
    modality's encoder is `trainable backbone -> the method's own encoder`
    on the pooled features; training and validation data stream from the
    records; predictions run the fine-tuned backbones once per record and
    the rest of the model on those features for every mask.

    Args:
        source: a `FinetuneSource` (keyword); the other arguments are the
            method's. Its `input_shapes` and `statistics` are replaced by
            the backbones' pooled widths and feature statistics.
    """

    def __init__(self, task, input_shapes, statistics=None, **kwargs):
        source = kwargs.pop("source")
        kwargs.setdefault("learning_rate", source.learning_rate)
        if hasattr(type(self), "linear_base"):  # Robult's: not on pixels
            kwargs.setdefault("linear_base", False)
        super().__init__(
            task,
            {m: (source.widths[m],) for m in MODALITIES},
            source.statistics,
            **kwargs,
        )
        self.source = source
        self._features = {}
        self._feature_model = None

    def encoder(self, name):
        return keras.Sequential(
            [
                keras.Input(
                    self.source.raw_shape(name),
                    dtype="float32" if name == "image" else "int32",
                ),
                self.source.backbone(name),
                super().encoder(name),
            ],
            name=f"{name}_finetuned_encoder",
        )

    def dataset(
        self, x, y, batch_size, seed, labeled_only=False, initial_epoch=0
    ):
        # One epoch per iteration, of a length known once it has been read
        # (files that cannot be read are skipped): a resumed fine-tuning
        # gets the weights of the epoch it resumes from, not its batches.
        is_labeled = np.asarray(y["is_labeled"]) > 0
        records = self.source.select(x, is_labeled)
        if labeled_only:
            records = records.subset(np.flatnonzero(is_labeled))
        batch_size = min(batch_size, len(records))
        dataset = self.source.dataset(
            records, batch_size, True, seed, self.modality_dropout
        )
        return dataset, None

    def validation_dataset(self, x, labels, batch_size):
        return self.source.dataset(self.source.select(x), batch_size)

    def sample_inputs(self, x):
        sample, _ = next(iter(self.validation_dataset(x, None, 1)))
        return {k: np.asarray(v) for k, v in sample.items()}

    def train(self, *args, **kwargs):
        # The pipeline's length is unknown until its first epoch ends (it
        # skips files that cannot be read): Keras warns at that end.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Your input ran out of data"
            )
            return super().train(*args, **kwargs)

    def fit(self, x, y, *args, **kwargs):
        self._features, self._feature_model = {}, None
        return super().fit(x, y, *args, **kwargs)

    def predict(self, x, batch_size=1024):
        rows = np.asarray(x[MODALITIES[0]]).reshape(-1).astype("int64")
        features = self.features(rows)
        inputs = {m: features[m] for m in MODALITIES}
        inputs[MASK_KEY] = np.asarray(x[MASK_KEY], "float32")
        outputs = self.feature_model().predict(
            inputs, batch_size=batch_size, verbose=0
        )
        return outputs["prediction"]

    def features(self, rows):
        """Pooled features of the fine-tuned backbones at `rows` (each
        record runs through the backbones once per trained model)."""
        todo = np.asarray(sorted(set(rows.tolist()) - set(self._features)))
        if todo.size:
            backbones = {
                m: self.model.encoders[m].layers[0] for m in MODALITIES
            }
            computed = compute_features(
                self.source.records.subset(todo),
                backbones["image"],
                backbones["text"],
                self.source.tokenizer,
                self.source.image_size,
                self.source.sequence_length,
                self.source.batch_size,
                check=False,
            )
            if len(computed["unreadable"]):
                bad = todo[computed["unreadable"]]
                raise ValueError(
                    "The images of records "
                    f"{self.source.records.ids[bad].tolist()} cannot be "
                    "decoded any more (changed during the run)."
                )
            for index, row in enumerate(todo):
                self._features[int(row)] = (
                    computed["image"][index],
                    computed["text"][index],
                )
        return {
            m: np.stack([self._features[int(r)][i] for r in rows])
            for i, m in enumerate(MODALITIES)
        }

    def feature_model(self):
        """The trained model on pooled features: its own fusion and heads,
        the encoders after the backbones (the weights are shared)."""
        if self._feature_model is not None:
            return self._feature_model
        heads = {m: self.model.encoders[m].layers[-1] for m in MODALITIES}
        sample = {
            m: np.zeros((1, self.source.widths[m]), "float32")
            for m in MODALITIES
        }
        sample[MASK_KEY] = np.ones((1, len(MODALITIES)), "float32")
        self._feature_model = replace_encoders(self.model, heads, sample)
        return self._feature_model


@functools.cache
def finetuned_class(cls):
    """`cls` (a `Method` subclass) trained end to end."""
    return type(
        f"Finetuned{cls.__name__}",
        (FinetuneMixin, cls),
        {"__module__": __name__, "__doc__": FinetuneMixin.__doc__},
    )

"""Throughput of the streaming image+text pipeline (JPEG files read,
decoded and resized, texts tokenised, batched) against the backbone's.

    python benchmarks/image_pipeline.py                  # 2000 images
    python benchmarks/image_pipeline.py --images 5000 --size 224

Writes `--images` random JPEGs of UPMC Food-101's typical size (512 x 384,
quality 90) and a Food-101-style records file into a temporary folder,
then iterates `image_text_dataset` over them twice (the first pass warms
the file cache) with a WordPiece tokenizer, and prints images/s of the
second pass; then the throughput of a ResNet-18 backbone (the default
image preset's architecture, random weights) on images of that size, to
show which of the two limits the feature pass. Nothing is downloaded.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sequence-length", type=int, default=32)
    parser.add_argument(
        "--backbone-batches",
        type=int,
        default=4,
        help="batches through a ResNet-18 (random weights, the preset's "
        "architecture) for its own throughput; 0 to skip",
    )
    parser.add_argument(
        "--finetune-steps",
        type=int,
        default=3,
        help="Robult training steps with both backbones trainable "
        "(--finetune's cost, batch 32); 0 to skip",
    )
    args = parser.parse_args()

    import keras_hub
    import numpy as np
    from PIL import Image

    from keras_robult.data import ImageTextRecords
    from keras_robult.data.image_text_pipeline import image_text_dataset

    rng = np.random.default_rng(0)
    words = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(500)]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=words)
    with tempfile.TemporaryDirectory() as folder:
        # Smooth random images compress like photos (noise would not).
        base = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        paths, texts = [], []
        for index in range(args.images):
            shifted = np.roll(base, index, axis=1)
            image = Image.fromarray(shifted).resize((512, 384))
            path = os.path.join(folder, f"{index}.jpg")
            image.save(path, quality=90)
            paths.append(path)
            texts.append(" ".join(f"w{(index + k) % 500}" for k in range(12)))
        records = ImageTextRecords(
            [str(i) for i in range(args.images)],
            paths,
            texts,
            np.arange(args.images) % 101,
        )
        dataset = image_text_dataset(
            records,
            image_size=(args.size, args.size),
            batch_size=args.batch_size,
            tokenizer=tokenizer,
            sequence_length=args.sequence_length,
        )
        for _ in dataset:  # warm-up: file cache, tf.data start-up
            pass
        start = time.perf_counter()
        count = sum(int(x["image"].shape[0]) for x, _ in dataset)
        seconds = time.perf_counter() - start
    print(
        f"pipeline: {count} JPEGs 512x384 -> {args.size}x{args.size}, "
        f"tokenised, batch {args.batch_size}: {count / seconds:.0f} "
        f"images/s ({os.cpu_count()} CPU cores)"
    )
    if args.backbone_batches:
        backbone_throughput(args)
    if args.finetune_steps:
        finetune_step_time(args)


def backbone_throughput(args):
    """Images/s of a ResNet-18 (keras-hub, resnet_18_imagenet's
    architecture, random weights) pooled by `PooledBackbone`."""
    import keras
    import numpy as np

    from keras_robult.encoders import PooledBackbone

    backbone = resnet_18(args.size)
    inputs = keras.Input((args.size, args.size, 3))
    model = keras.Model(inputs, PooledBackbone(backbone, "image")(inputs))
    images = np.random.default_rng(0).uniform(
        0, 255, (args.batch_size, args.size, args.size, 3)
    )
    model.predict_on_batch(images.astype("float32"))  # compile
    start = time.perf_counter()
    for _ in range(args.backbone_batches):
        model.predict_on_batch(images.astype("float32"))
    seconds = time.perf_counter() - start
    count = args.backbone_batches * args.batch_size
    print(
        f"ResNet-18 backbone ({keras.backend.backend()}), batch "
        f"{args.batch_size}: {count / seconds:.1f} images/s"
    )


def resnet_18(size):
    import keras_hub

    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        image_shape=(size, size, 3),
    )


def finetune_step_time(args, batch=32, length=64):
    """Seconds per Robult training step with ResNet-18 and an
    all-MiniLM-L6-v2-sized BERT (6 layers, width 384) both trainable, as
    `--finetune` trains them; and what one Food-101 epoch (61,189 training
    pairs) would take at that rate."""
    import keras
    import keras_hub
    import numpy as np

    import keras_robult
    from keras_robult.encoders import MLPEncoder, PooledBackbone

    text = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=6,
        num_heads=12,
        hidden_dim=384,
        intermediate_dim=1536,
        max_sequence_length=512,
    )
    encoders = {
        "image": keras.Sequential(
            [
                keras.Input((args.size, args.size, 3)),
                PooledBackbone(resnet_18(args.size), "image"),
                MLPEncoder(128),
            ]
        ),
        "text": keras.Sequential(
            [
                keras.Input((length,), dtype="int32"),
                PooledBackbone(text, "text"),
                MLPEncoder(128),
            ]
        ),
    }
    model = keras_robult.Robult(
        encoders, keras_robult.tasks.Classification(101), latent_dim=128
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        jit_compile=keras.backend.backend() != "torch",
    )
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(0, 255, (batch, args.size, args.size, 3)),
        "text": rng.integers(1, 30522, (batch, length)),
        "modality_mask": np.ones((batch, 2)),
    }
    x = {
        k: v.astype("int32" if k == "text" else "float32") for k, v in x.items()
    }
    y = {
        "label": rng.integers(0, 101, batch).astype("int32"),
        "is_labeled": (np.arange(batch) < 4).astype("float32"),
    }
    start = time.perf_counter()
    model.train_on_batch(x, y)  # compile
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.finetune_steps):
        model.train_on_batch(x, y)
    step = (time.perf_counter() - start) / args.finetune_steps
    print(
        f"--finetune step, ResNet-18 {args.size}px + MiniLM-sized BERT "
        f"(length {length}), batch {batch} ({keras.backend.backend()}): "
        f"{step:.2f} s/step (first step {compile_seconds:.0f} s); a "
        f"Food-101 epoch (61,189 pairs) = {61189 / batch * step / 3600:.1f} "
        "h on this machine"
    )


if __name__ == "__main__":
    main()

"""Input widths shared by the step benchmarks."""

MODALITY_DIMS = (76, 216, 64, 240, 47, 6)  # mfeat-like widths


def modality_dims(num_modalities):
    """Input widths of `num_modalities` modalities (mfeat's, cycled)."""
    return tuple(
        MODALITY_DIMS[i % len(MODALITY_DIMS)] for i in range(num_modalities)
    )

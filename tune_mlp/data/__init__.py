"""Fashion-MNIST and MNIST without needing the internet: the IDX codec, the look-up chain, the splits.

from tune_mlp.data import load_splits
splits = load_splits("fashion_mnist", data_dir_or_sources, val_fraction=0.1, seed=0)
"""

from tune_mlp.data.idx import (
    IDX_FILES,
    IMAGE_SIDE,
    NUM_FEATURES,
    DatasetFormatError,
    IDXFormatError,
    read_idx,
    write_idx,
)
from tune_mlp.data.locate import (
    DATA_DIR_ENV,
    DatasetLocation,
    DatasetNotFoundError,
    DataSources,
    find_dataset_dir,
)
from tune_mlp.data.splits import CLASS_NAMES, Splits, load_dataset, load_splits, stratified_split

__all__ = [
    "CLASS_NAMES",
    "DATA_DIR_ENV",
    "IDX_FILES",
    "IMAGE_SIDE",
    "NUM_FEATURES",
    "DataSources",
    "DatasetFormatError",
    "DatasetLocation",
    "DatasetNotFoundError",
    "IDXFormatError",
    "Splits",
    "find_dataset_dir",
    "load_dataset",
    "load_splits",
    "read_idx",
    "stratified_split",
    "write_idx",
]

"""Training the reading model (`qa train-reader`): the recipe and its record (`recipe`), SQuAD
and its fixed split (`data`), training examples and their augmentations (`examples`), the torch
network (`network`), validation (`validation`), checkpoints (`checkpoint`), ONNX export and int8
forms (`export`), the model card (`card`), and the run itself (`train`). The product only runs
the exported weights (`qa.reader.model`); nothing in the runtime imports this package."""

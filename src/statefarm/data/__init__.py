"""The competition's files.

Kaggle's layout and the image index (``layout``), decoding (``images``), the image cache
(``cache``), driver folds and the tuning sample (``splits``), the stand-in generator
(``demo_data``), download and upload (``competition``), submission CSVs (``submission``).
"""

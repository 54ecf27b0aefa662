"""statefarm: the Kaggle State Farm Distracted Driver Detection competition as a Kedro project."""

__version__ = "0.1.0"

"""Kedro project settings: configuration environments, the config loader and the project's hooks."""

import logging
import os
import re


class ThirdPartyWarnings(logging.Filter):
    """Drops, by message, third-party warnings a user can do nothing about; any other warning still shows.

    Kedro routes Python warnings to the ``py.warnings`` logger. A ``warnings`` filter would
    not do: mlflow raises its warning under its own ``simplefilter("once")``. Kedro's
    logging.yml cannot name a filter class of ours, so it is installed here, before the
    imports below raise them (conf/logging.yml quiets the chatty loggers).
    """

    NOISE = re.compile(
        "|".join(
            [
                # kedro and kedro-mlflow register OmegaConf resolvers with a deprecated call.
                r"register_new_resolver\(\) is deprecated",
                # mlflow.pyfunc asks kedro-mlflow's model class for type hints at import.
                r"Add type hints to the `predict` method",
                # Our dotted names are by design: pseudo.fold_<k> reads baseline.fold_<k>'s model and
                # test logits, every model reads fold_<k>.driver_split, the comparison reads both
                # kinds (kedro-org/kedro#5021: Kedro warns about any cross-namespace read).
                r"One or more dataset names contain '\.' characters",
                # tqdm.auto (imported by implicit) in a notebook without ipywidgets; no bar is drawn there.
                r"IProgress not found",
            ]
        )
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.NOISE.search(record.getMessage())


logging.getLogger("py.warnings").addFilter(ThirdPartyWarnings())

from kedro.config import OmegaConfigLoader  # noqa: E402

from statefarm.hooks import (  # noqa: E402
    InterruptHooks,
    ParameterHooks,
    ProjectMlflowHook,
    ResumeHooks,
    RunLockHooks,
    RunSummaryHooks,
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (or --params) overrides parameters key by key; conf/base stays complete.
    "merge_strategy": {"parameters": "soft"},
    # kedro-mlflow registers this pattern too, but only after ProjectMlflowHook has read it.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
    # ${environ:NAME,default}: an environment variable where conf allows one (MLFLOW_TRACKING_URI).
    "custom_resolvers": {"environ": lambda name, default=None: os.environ.get(name) or default},
}
# Before any other hook, and last registered first: the run lock, then the resume check, then MLflow's.
HOOKS = (
    ParameterHooks(), InterruptHooks(), RunSummaryHooks(), ProjectMlflowHook(), ResumeHooks(), RunLockHooks(),
)  # fmt: skip
# kedro-mlflow's own hook is replaced by ProjectMlflowHook (the same, less the scan grid's parameters).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution name

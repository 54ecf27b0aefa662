"""Kedro project settings: configuration environments, the config loader and the project's hooks."""

from kedro.config import OmegaConfigLoader

from statefarm.hooks import InterruptHooks, ParameterHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (or --params) overrides parameters key by key; conf/base stays complete.
    "merge_strategy": {"parameters": "soft"},
}
HOOKS = (ParameterHooks(), InterruptHooks())

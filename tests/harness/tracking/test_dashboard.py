"""The tags that make `harness ui` open an experiment's runs table in model-training mode with the study view."""

import json

import pytest
from mlflow.tracking import MlflowClient

from harness.tracking.dashboard import (
    EXPERIMENT_KIND_TAG,
    VIEW_TAG,
    dashboard_tags,
    ensure_dashboard,
    runs_page_url,
)
from harness.tracking.store import default_uri, get_or_create_experiment

COLUMNS = ["metrics.`val/loss`", "metrics.`val/lddt`", "metrics.`val/contact_precision`", "params.`model.c_z`",
           "params.`model.n_pairformer_blocks`", "params.`model.n_diffusion_blocks`", "params.`train.lr`",
           "tags.`study_budgets`", "params.`seed`"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return default_uri(tmp_path_factory.mktemp("store"))


def test_a_new_experiment_carries_the_study_view(store):
    tags = MlflowClient(store).get_experiment(get_or_create_experiment(store, "width_vs_depth")).tags
    assert tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    view = json.loads(tags[VIEW_TAG])
    assert view["name"] == "Study" and view["createdAt"] == view["updatedAt"] > 1.7e12  # ms since the epoch
    state = json.loads(view["state"])
    assert state["selectedColumns"] == COLUMNS and state["columnOrder"] == COLUMNS
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`val/loss`", True)
    assert state["columnWidths"] == {"metrics.`val/loss`": 150, "metrics.`val/lddt`": 150,
                                     "metrics.`val/contact_precision`": 150,
                                     "params.`model.n_pairformer_blocks`": 180,
                                     "params.`model.n_diffusion_blocks`": 180}


def test_an_older_experiment_gets_only_the_tags_it_lacks(store):
    client = MlflowClient(store)
    old = client.create_experiment("created-before-the-tags")
    assert ensure_dashboard(client, old) == [EXPERIMENT_KIND_TAG, VIEW_TAG]
    assert {k: v for k, v in client.get_experiment(old).tags.items() if k != VIEW_TAG} == {
        EXPERIMENT_KIND_TAG: "custom_model_development"}
    assert ensure_dashboard(client, old) == []
    # A view the user saved over ours, and a kind chosen on purpose, stay.
    client.set_experiment_tag(old, VIEW_TAG, '{"name": "mine"}')
    client.set_experiment_tag(old, EXPERIMENT_KIND_TAG, "genai_development")
    assert ensure_dashboard(client, old) == []
    tags = client.get_experiment(old).tags
    assert (tags[VIEW_TAG], tags[EXPERIMENT_KIND_TAG]) == ('{"name": "mine"}', "genai_development")


def test_dashboard_tags_at_a_given_time():
    view = json.loads(dashboard_tags(now_ms=1234)[VIEW_TAG])
    assert (view["createdAt"], view["updatedAt"]) == (1234, 1234)


def test_runs_page_url_opens_the_view_in_model_training_mode():
    assert runs_page_url("http://[::1]:5000/", "7") == (
        "http://[::1]:5000/#/experiments/7/runs?viewStateShareKey=study&workflowType=machine_learning")

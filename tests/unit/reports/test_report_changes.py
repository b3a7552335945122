"""What changed since production's run: params as dotted keys, data versions side by side."""

from __future__ import annotations

from anomalyflow.reports.changes import ABSENT, Change, data_versions, flatten, params_changes


def test_flatten_gives_dotted_keys_and_keeps_lists_whole() -> None:
    tree = {"finetune": {"max_epochs": 5, "lr": {"head": 0.01}}, "seeds": [0, 1], "empty": {}}

    assert flatten(tree) == {
        "finetune.max_epochs": 5,
        "finetune.lr.head": 0.01,
        "seeds": [0, 1],
        "empty": {},
    }


def test_params_changes_lists_each_changed_key_old_to_new_sorted() -> None:
    production = {"finetune": {"max_epochs": 5, "lr": 0.001}, "gate": {"min_auprc": 0.2}}
    candidate = {"finetune": {"max_epochs": 8, "lr": 0.001}, "gate": {"min_auprc": 0.2}}

    assert params_changes(production, candidate) == [Change("finetune.max_epochs", "5", "8")]


def test_params_changes_shows_added_and_removed_keys_as_absent() -> None:
    changes = params_changes({"drift": {"method": "psi"}}, {"drift": {"share": 0.3}})

    assert changes == [
        Change("drift.method", "psi", ABSENT),
        Change("drift.share", ABSENT, "0.3"),
    ]


def test_a_tuple_in_this_run_equals_the_list_the_stored_record_holds() -> None:
    stored = {"orchestration": {"finetune_seeds": [0, 1]}}  # read back from JSON
    live = {"orchestration": {"finetune_seeds": (0, 1)}}  # asdict(Params)

    assert params_changes(stored, live) == []
    assert params_changes(stored, {"orchestration": {"finetune_seeds": (0, 2)}}) == [
        Change("orchestration.finetune_seeds", "[0, 1]", "[0, 2]")
    ]


def test_data_versions_put_data_hashes_first_and_pair_both_sides() -> None:
    candidate = {"weights_md5": "w2", "batch_md5": "b2", "reference_md5": "r1"}
    production = {"weights_md5": "w1", "batch_md5": "b1", "reference_md5": "r1"}

    assert data_versions(candidate, production) == [
        ("batch_md5", "b2", "b1"),
        ("reference_md5", "r1", "r1"),
        ("weights_md5", "w2", "w1"),
    ]
    assert data_versions({"batch_md5": "b2"}, None) == [("batch_md5", "b2", None)]

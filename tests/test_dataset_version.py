"""``upload --dataset-version`` and ``Ingester.create_dataset_version``: once every row
landed, a version of each dataset the rows went into, its id printed; none when a row
failed; a version made once even when its reply is lost."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2

from ingest import ClarifaiError, Ingester
from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import make_dataset, sandbox_config
from tests.test_cli import APP, AUTH, Server, clean, start_server, upload


def versions(server: Server, dataset_id: str) -> list[str]:
    reply = server.stub.ListDatasetVersions(
        service_pb2.ListDatasetVersionsRequest(user_app_id=APP, dataset_id=dataset_id),
        metadata=AUTH,
        timeout=10,
    )
    return [v.id for v in reply.dataset_versions]


def test_a_version_of_each_dataset_once_every_row_landed(tmp_path: Path) -> None:
    data = clean(make_dataset(30, seed=4))
    path = data.write(tmp_path / "rows.csv")
    with_column = tmp_path / "split.csv"
    text = path.read_text().splitlines()
    rows = [
        text[0] + ",dataset_id",
        *(f"{line},{'a' if i % 2 else 'b'}" for i, line in enumerate(text[1:])),
    ]
    with_column.write_text("\n".join(rows) + "\n")
    with start_server("--dataset", "train", "--dataset", "a", "--dataset", "b") as server:
        done = upload(server, path, "--dataset-id", "train", "--dataset-version")
        assert done.returncode == 0, done.stderr
        [version] = done.stdout.split()
        assert versions(server, "train") == [version]
        assert f"{version} of dataset train" in done.stderr

        # --dataset-id and the datasets the data names: one version each
        both = upload(server, with_column, "--dataset-id", "train", "--dataset-version")
        assert both.returncode == 0, both.stderr
        made = both.stdout.split()
        assert len(made) == 3 and version not in made
        assert versions(server, "a") == [made[0]] and versions(server, "b") == [made[1]]
        assert versions(server, "train") == [version, made[2]]


def test_no_version_when_a_row_failed_or_no_dataset(tmp_path: Path) -> None:
    data = make_dataset(30, seed=5)  # broken URLs and invalid rows: some rows fail
    path = data.write(tmp_path / "rows.csv")
    with start_server("--dataset", "train") as server:
        failed = upload(server, path, "--dataset-id", "train", "--dataset-version")
        assert failed.returncode == 1 and failed.stdout == ""
        assert versions(server, "train") == []
        nowhere = upload(server, path, "--dataset-version")
        assert nowhere.returncode == 2
        assert "--dataset-version makes a version of the dataset" in nowhere.stderr


@pytest.mark.anyio
async def test_a_lost_reply_makes_one_version_not_two() -> None:
    # seed 1: the sandbox loses the reply of the first call and answers the second
    options = SandboxOptions(rps=0, datasets=("train",), lost_reply_rate=0.5, seed=1)
    with anyio.fail_after(30):
        async with Sandbox(options) as sb, Ingester(sandbox_config(sb)) as ing:
            version = await ing.create_dataset_version("train", description="test")
            made = sb.servicer.state.versions["train"]
            assert list(made) == [version]
            assert made[version].message.description == "test"
            assert sb.stats.lost_replies_injected == 1
            with pytest.raises(ClarifaiError, match="no version of dataset 'absent'"):
                await ing.create_dataset_version("absent")

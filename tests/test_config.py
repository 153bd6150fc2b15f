"""Pure: configuration parsing, overrides, and the messages that name file, key and fix."""

from pathlib import Path

import pytest

from pipeline.config import ConfigError, is_gcr_bucket, load_config, parse_config, parse_size

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "scan.yaml"
MINIMAL = {"source": {"buckets": ["artifacts.p-1234.appspot.com"]}}


def with_(section: str, **values):
    raw = {"source": dict(MINIMAL["source"])}
    raw.setdefault(section, {}).update(values)
    return raw


def test_defaults_fill_what_is_not_given():
    config = parse_config(MINIMAL, ORIGIN)
    assert config.source.buckets == ("artifacts.p-1234.appspot.com",)
    assert config.source.prefix == "containers/images/"
    assert config.scan.shard_count == 16 and config.scan.chunk_size == 1024 * 1024
    assert config.report.output == "./scrub-reports" and config.report.run_id is None


@pytest.mark.parametrize(
    "raw, message",
    [
        ("just text", "scan.yaml: expected a mapping of sections"),
        ({"sources": {}}, "scan.yaml: unknown section(s) sources; expected only source, scan, report"),
        ({"source": {"bucket": ["x"]}}, "scan.yaml: source: unknown key(s) bucket; valid keys are buckets"),
        ({"source": ["a"]}, "scan.yaml: source: expected a mapping of keys, got list"),
        (
            {"source": {}},
            "scan.yaml: source: nothing to scan; set source.buckets, source.projects, source.organizations "
            "and/or source.folders",
        ),
        (
            {"source": {"organizations": ["12ab"]}},
            "scan.yaml: source.organizations: item 0 ('12ab'): expected an organization number, digits only",
        ),
        (
            {"source": {"folders": [0]}},
            "scan.yaml: source.folders: item 0 (0): expected a folder number, digits only",
        ),
        (
            {"source": {"buckets": ["b-1234"], "folders": [456]}},
            "scan.yaml: source.buckets cannot be combined with source.organizations or source.folders",
        ),
        (
            {"source": {"buckets": "artifacts.p.appspot.com"}},
            'scan.yaml: source.buckets: expected a list, e.g. ["artifacts.p.appspot.com"]',
        ),
        (
            {"source": {"buckets": ["gs://artifacts.p.appspot.com"]}},
            "scan.yaml: source.buckets: item 0 ('gs://artifacts.p.appspot.com'): "
            "expected a bare bucket name; drop the 'gs://'",
        ),
        (
            {"source": {"buckets": ["Bad_Bucket!"]}},
            "source.buckets: item 0 ('Bad_Bucket!'): expected a GCS bucket name",
        ),
        ({"source": {"buckets": ["aaa.com", "aaa.com"]}}, "source.buckets: expected each entry once"),
        (
            {"source": {"projects": ["1bad"]}},
            "scan.yaml: source.projects: item 0 ('1bad'): expected a Google Cloud project id",
        ),
        (with_("source", prefix="/containers/images"), "scan.yaml: source.prefix: expected a folder-like prefix"),
        (
            with_("source", emulator_endpoint="localhost:9023"),
            "scan.yaml: source.emulator_endpoint: expected an http(s)://HOST:PORT endpoint, e.g. http://127.0.0.1:9023",
        ),
        (with_("scan", shard_count=10), "scan.yaml: scan.shard_count: expected one of 16, 256, 4096"),
        (with_("scan", shard_count=True), "scan.yaml: scan.shard_count: expected one of 16, 256, 4096"),
        (with_("scan", chunk_size="1 MB"), "scan.yaml: scan.chunk_size: expected a size in bytes or with a unit"),
        (with_("scan", chunk_size=100), "scan.yaml: scan.chunk_size: expected a size from 4KiB to 256MiB"),
        (
            with_("scan", read_concurrency=0),
            "scan.yaml: scan.read_concurrency: expected a whole number from 1 to 512, got 0",
        ),
        (with_("scan", max_attempts="3"), "scan.yaml: scan.max_attempts: expected a whole number from 1 to 20"),
        (
            with_("scan", read_timeout=0),
            "scan.yaml: scan.read_timeout: expected a number of seconds from 0.1 to 3600, got 0",
        ),
        (with_("scan", read_timeout="soon"), "scan.yaml: scan.read_timeout: expected a number of seconds, e.g. 60"),
        (with_("scan", min_read_rate="fast"), "scan.yaml: scan.min_read_rate: expected a size in bytes or with a unit"),
        (with_("scan", min_read_rate=10), "scan.yaml: scan.min_read_rate: expected a size from 1KiB to 10GiB"),
        (with_("scan", recover_images="yes"), "scan.yaml: scan.recover_images: expected true or false"),
        (
            with_("report", output="s3://bucket/x"),
            "scan.yaml: report.output: expected a local directory or gs://BUCKET/PATH",
        ),
        (
            with_("report", output="gs://UPPER/x"),
            "scan.yaml: report.output: expected gs://BUCKET[/PATH] with a valid bucket name",
        ),
        (with_("report", run_id="a/b"), "scan.yaml: report.run_id: expected letters, digits"),
        (with_("report", output=""), "scan.yaml: report.output: expected a non-empty string"),
    ],
)
def test_bad_config_names_file_key_and_fix(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, ORIGIN)
    assert message in str(err.value)


def test_overrides_win_and_bad_overrides_name_the_flag():
    config = parse_config(MINIMAL, ORIGIN, {"scan.shard_count": (256, "command line --shard-count")})
    assert config.scan.shard_count == 256
    with pytest.raises(ConfigError, match=r"^command line --shard-count: expected one of"):
        parse_config(MINIMAL, ORIGIN, {"scan.shard_count": (7, "command line --shard-count")})


def test_sizes_accept_units():
    assert parse_size("256KiB") == 262144
    assert parse_size("1 MiB") == 1048576
    assert parse_size(65536) == 65536


def test_file_errors_name_the_file_and_position(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: cannot read the config file"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("source:\n  buckets: [a, b\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+, column \d+"):
        load_config(broken)
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("source:\n\tbuckets: []\n")
    with pytest.raises(ConfigError, match="tabs.yaml: not valid YAML"):
        load_config(tabs)


def test_shipped_configs_are_valid():
    local = load_config(REPO / "config" / "local.yaml")
    assert local.source.buckets == (
        "artifacts.demo-project.appspot.com",
        "eu.artifacts.demo-project.appspot.com",
        "asia.artifacts.demo-project.appspot.com",  # the verdict's two buckets (docs/recovery.md)
        "us.artifacts.demo-project.appspot.com",
    )
    # The planted problems (incomplete), the EU bucket's complete folder, the successor (docs/recovery.md),
    # and the successors of the verdict's two buckets.
    assert [(source.complete, source.role) for source in local.manifests.sources] == [
        (False, None),
        (True, None),
        (False, "successor"),
        (False, "successor"),
        (False, "successor"),
    ]
    example = load_config(REPO / "config" / "example.yaml")
    assert example.scan.chunk_size == 1024 * 1024


def test_example_documents_every_key():
    from pipeline.config import SCHEMA

    text = (REPO / "config" / "example.yaml").read_text()
    for section, keys in SCHEMA.items():
        assert f"\n{section}:" in text
        for key in keys:
            assert f"  {key}:" in text, f"config/example.yaml does not document {section}.{key}"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("artifacts.my-project.appspot.com", True),
        ("us.artifacts.my-project.appspot.com", True),
        ("eu.artifacts.my-project.appspot.com", True),
        ("asia.artifacts.my-project.appspot.com", True),
        ("artifacts.example.com:my-project.appspot.com", True),
        ("staging.my-project.appspot.com", False),
        ("xx.artifacts.my-project.appspot.com", False),
        ("artifacts.my-project.appspot.com.evil", False),
    ],
)
def test_gcr_bucket_pattern(name, expected):
    assert is_gcr_bucket(name) is expected

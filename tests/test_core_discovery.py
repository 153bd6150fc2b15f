"""Fleet discovery, pure half (pipeline/core/discovery.py): scopes, GCR buckets among search results, refusal lines."""

from __future__ import annotations

import pytest

from pipeline.core.discovery import Scope, bucket_name, gcr_buckets, refusal, scopes_of

ORG = Scope("organizations", "123")
FOLDER = Scope("folders", "456")
ORG_WHERE = "organizations/123 (--scan-org / source.organizations): Cloud Asset Inventory (cloudasset.googleapis.com)"
FOLDER_WHERE = "folders/456 (--scan-folder / source.folders): Cloud Asset Inventory (cloudasset.googleapis.com)"
ENABLE_HINT = "or name the projects with --scan-project"

# The body Google sends when the API is off in the quota project: a message over 300 characters,
# a Help detail with no reason, and the ErrorInfo that names the consumer project.
DISABLED_MESSAGE = (
    "Cloud Asset API has not been used in project 4242 before or it is disabled. Enable it by visiting "
    "https://console.developers.google.com/apis/api/cloudasset.googleapis.com/overview?project=4242 then retry. "
    "If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
)


def service_disabled(message: str = DISABLED_MESSAGE, consumer: str = "projects/4242") -> dict:
    return {
        "error": {
            "code": 403,
            "message": message,
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Google developers console API activation", "url": "https://…"}],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {"consumer": consumer, "service": "cloudasset.googleapis.com"},
                },
            ],
        }
    }


def plain_error(status: int, message: str, state: str = "PERMISSION_DENIED") -> dict:
    return {"error": {"code": status, "message": message, "status": state}}


def test_organisations_come_before_folders_each_in_the_order_given():
    scopes = scopes_of(("123", "9"), ("456",))
    assert scopes == [Scope("organizations", "123"), Scope("organizations", "9"), Scope("folders", "456")]
    assert [s.where for s in scopes] == [
        "organizations/123 (--scan-org / source.organizations)",
        "organizations/9 (--scan-org / source.organizations)",
        "folders/456 (--scan-folder / source.folders)",
    ]
    assert scopes_of((), ()) == []


def test_a_result_of_another_asset_type_is_skipped_even_when_named_like_a_gcr_bucket():
    # The search asks for buckets only; anything else it answers must not become a bucket to scan.
    results = [
        {"name": "//storage.googleapis.com/artifacts.p-1.appspot.com", "assetType": "storage.googleapis.com/Object"},
        {"name": "//storage.googleapis.com/artifacts.p-2.appspot.com", "assetType": "storage.googleapis.com/Bucket"},
    ]
    assert gcr_buckets(results) == ["artifacts.p-2.appspot.com"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("//storage.googleapis.com/b-1", "b-1"),
        ("//storage.googleapis.com/", None),  # no bucket after the prefix
        ("//storage.googleapis.com/b-1/o", None),  # below a bucket: names an object, not the bucket
        ("//storage.googleapis.com/b-1/", None),
        ("storage.googleapis.com/b-1", None),
    ],
)
def test_only_a_full_bucket_resource_name_names_a_bucket(name, expected):
    assert bucket_name({"name": name, "assetType": "storage.googleapis.com/Bucket"}) == expected


@pytest.mark.parametrize(
    ("scope", "status", "body", "expected"),
    [
        (
            ORG,
            403,
            service_disabled(),
            f"{ORG_WHERE} is not enabled in the project the credentials bill the call to (Cloud Asset API has not "
            "been used in project 4242 before or it is disabled. Enable it by visiting "
            "https://console.developers.google.com/apis/api/cloudasset.googleapis.com/overview?project=4242 then "
            "retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems); "
            f"enable it with `gcloud services enable cloudasset.googleapis.com --project=4242`, {ENABLE_HINT}",
        ),
        (
            # The reason alone tells: Google localises the message (Accept-Language), not the reason.
            FOLDER,
            403,
            service_disabled("Die Cloud Asset API wurde im Projekt 4242 noch nicht verwendet.", "projects/4242"),
            f"{FOLDER_WHERE} is not enabled in the project the credentials bill the call to (Die Cloud Asset API "
            "wurde im Projekt 4242 noch nicht verwendet.); enable it with "
            f"`gcloud services enable cloudasset.googleapis.com --project=4242`, {ENABLE_HINT}",
        ),
        (
            # Without an ErrorInfo either phrase of the message tells, and no project can be named.
            ORG,
            403,
            plain_error(403, "Cloud Asset API has not been used in project 4242 before."),
            f"{ORG_WHERE} is not enabled in the project the credentials bill the call to (Cloud Asset API has not "
            f"been used in project 4242 before.); enable it with `gcloud services enable cloudasset.googleapis.com`, "
            f"{ENABLE_HINT}",
        ),
        (
            ORG,
            403,
            plain_error(403, "API cloudasset.googleapis.com is disabled for this consumer."),
            f"{ORG_WHERE} is not enabled in the project the credentials bill the call to (API "
            "cloudasset.googleapis.com is disabled for this consumer.); enable it with "
            f"`gcloud services enable cloudasset.googleapis.com`, {ENABLE_HINT}",
        ),
        (
            ORG,
            403,
            plain_error(403, "The caller does not have permission"),
            f"{ORG_WHERE} refused the search (PERMISSION_DENIED: The caller does not have permission); the identity "
            "needs roles/cloudasset.viewer (permission cloudasset.assets.searchAllResources) on organizations/123",
        ),
        (
            # An empty message and no status: the HTTP status stands in for both.
            FOLDER,
            403,
            {"error": {"code": 403, "message": "  \n"}},
            f"{FOLDER_WHERE} refused the search (HTTP 403: HTTP 403); the identity needs roles/cloudasset.viewer "
            "(permission cloudasset.assets.searchAllResources) on folders/456",
        ),
        (
            ORG,
            404,
            plain_error(404, "Organization not found", "NOT_FOUND"),
            f"{ORG_WHERE}: organizations/123 not found (Organization not found); check the number with "
            "`gcloud organizations list`",
        ),
        (
            # A gateway's HTML page is no JSON: the adapter passes None.
            FOLDER,
            502,
            None,
            f"{FOLDER_WHERE} answered HTTP 502 (HTTP 502)",
        ),
        (
            ORG,
            500,
            {"error": "backend error"},
            f"{ORG_WHERE} answered HTTP 500 (HTTP 500)",
        ),
    ],
)
def test_a_refusal_is_one_line_naming_what_was_refused_and_the_fix(scope, status, body, expected):
    assert refusal(scope, status, body) == expected


def test_a_disabled_api_ignores_details_that_are_not_objects():
    body = service_disabled()
    body["error"]["details"].insert(0, "not a detail")
    assert refusal(ORG, 403, body).endswith(
        f"enable it with `gcloud services enable cloudasset.googleapis.com --project=4242`, {ENABLE_HINT}"
    )


@pytest.mark.parametrize(("length", "shown"), [(299, 299), (300, 300), (301, 300), (2000, 300)])
def test_the_servers_message_is_cut_at_300_characters(length, shown):
    message = "m" * length
    line = refusal(FOLDER, 400, plain_error(400, message, "INVALID_ARGUMENT"))
    assert line == f"{FOLDER_WHERE} answered INVALID_ARGUMENT ({'m' * shown})"

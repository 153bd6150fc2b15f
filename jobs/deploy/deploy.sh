#!/usr/bin/env bash
# Deploys registry-scrub as a scheduled Dataflow Flex Template (README.md, "Production on Dataflow").
#
#   jobs/deploy/deploy.sh [--dry-run] STEP...
#
# Steps, in the order "all" runs them:
#   apis      enable the Google Cloud APIs it uses
#   iam       service accounts, buckets, repository and least-privilege grants
#   bigquery  dataset, tables and views for audits (only when BQ_DATASET is set)
#   image     build and push the image with Cloud Build
#   template  build the Flex Template spec from that image
#   run       launch one scan now
#   schedule  the launch workflow and the Cloud Scheduler job that starts it
#   alerts    log-based metrics on the structured outcome entries (exit_status, verdicts) and
#             alert policies on them (ALERT_CHANNELS: where they notify)
#
# Settings come from the environment (jobs/deploy/env.example lists them all):
#   set -a; . ./my-scrub.env; set +a; jobs/deploy/deploy.sh all
# Every step is idempotent: what exists is kept (or updated in place), never duplicated.
# --dry-run (or DRY_RUN=1) prints the commands without running any, and needs no gcloud.
set -euo pipefail

HERE="${BASH_SOURCE[0]%/*}"
[[ "$HERE" == "${BASH_SOURCE[0]}" ]] && HERE=.
HERE="$(cd "$HERE" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"

ALL_STEPS=(apis iam bigquery image template run schedule alerts)

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

settings() {
  require PROJECT REGION
  plain PROJECT REGION
  : "${DATAFLOW_BUCKET:=${PROJECT}-registry-scrub-dataflow}"
  : "${AR_REPO:=registry-scrub}"
  if [[ -z "${TAG:-}" ]]; then
    TAG="$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)"
  fi
  : "${IMAGE:=${REGION}-docker.pkg.dev/${PROJECT}/${AR_REPO}/registry-scrub:${TAG}}"
  : "${TEMPLATE:=gs://${DATAFLOW_BUCKET}/templates/registry-scrub.json}"
  : "${WORKER_SA:=registry-scrub-worker@${PROJECT}.iam.gserviceaccount.com}"
  : "${LAUNCHER_SA:=registry-scrub-launcher@${PROJECT}.iam.gserviceaccount.com}"
  : "${LAUNCHER_ROLE:=registryScrubLauncher}"
  : "${REPORT_PREFIX:=registry-scrub}"
  : "${MACHINE_TYPE:=n2-standard-4}"
  : "${MAX_WORKERS:=20}"
  : "${SHARD_COUNT:=256}"
  : "${WORKFLOW:=registry-scrub-launch}"
  : "${SCHEDULER_JOB:=registry-scrub-scan}"
  : "${SCHEDULE:=0 3 * * *}"
  : "${TIME_ZONE:=Etc/UTC}"
  : "${BQ_DATASET:=}"
  : "${CONFIG_FILE:=}"
  : "${SCAN_BUCKETS:=}"
  : "${SCAN_PROJECTS:=}"
  : "${DISABLE_PUBLIC_IPS:=0}"
  : "${ALERT_CHANNELS:=}"
  plain DATAFLOW_BUCKET AR_REPO TAG IMAGE TEMPLATE WORKER_SA LAUNCHER_SA REPORT_PREFIX \
    MACHINE_TYPE MAX_WORKERS SHARD_COUNT BQ_DATASET SCAN_BUCKETS SCAN_PROJECTS REPORT_BUCKET CONFIG_FILE \
    ALERT_CHANNELS
}

need_scan_settings() {
  require REPORT_BUCKET
  require_one_of SCAN_BUCKETS SCAN_PROJECTS
}

# --- apis ---

step_apis() {
  run gcloud services enable dataflow.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com cloudscheduler.googleapis.com workflows.googleapis.com \
    bigquery.googleapis.com storage.googleapis.com iam.googleapis.com logging.googleapis.com \
    monitoring.googleapis.com --project "$PROJECT"
}

# --- iam ---

grant_bucket() { # grant_bucket ROLE MEMBER BUCKET
  run gcloud storage buckets add-iam-policy-binding "gs://$3" --member "$2" --role "$1"
}

grant_scan_bucket() {
  grant_bucket roles/storage.objectViewer "serviceAccount:$WORKER_SA" "$1"
}

grant_scan_project() {
  local project="$1" bucket
  # Discovery lists the project's buckets; reading stays limited to its GCR buckets.
  run gcloud projects add-iam-policy-binding "$project" --member "serviceAccount:$WORKER_SA" \
    --role roles/storage.bucketViewer --condition None
  for bucket in "artifacts.${project}.appspot.com" "us.artifacts.${project}.appspot.com" \
    "eu.artifacts.${project}.appspot.com" "asia.artifacts.${project}.appspot.com"; do
    if is_dry_run || exists gcloud storage buckets describe "gs://$bucket" --format="value(name)"; then
      grant_scan_bucket "$bucket"
    fi
  done
}

ensure_service_account() { # ensure_service_account EMAIL DISPLAY_NAME
  ensure gcloud iam service-accounts describe "$1" --project "$PROJECT" -- \
    gcloud iam service-accounts create "${1%%@*}" --project "$PROJECT" --display-name "$2"
}

ensure_bucket() {
  ensure gcloud storage buckets describe "gs://$1" --format="value(name)" -- \
    gcloud storage buckets create "gs://$1" --project "$PROJECT" --location "$REGION" \
    --uniform-bucket-level-access --public-access-prevention
}

step_iam() {
  need_scan_settings
  ensure_service_account "$WORKER_SA" "registry-scrub Dataflow workers"
  ensure_service_account "$LAUNCHER_SA" "registry-scrub scheduled launches"
  ensure_bucket "$DATAFLOW_BUCKET"
  ensure_bucket "$REPORT_BUCKET"
  ensure gcloud artifacts repositories describe "$AR_REPO" --location "$REGION" --project "$PROJECT" -- \
    gcloud artifacts repositories create "$AR_REPO" --repository-format docker \
    --location "$REGION" --project "$PROJECT" --description "registry-scrub images"

  # Workers: run Dataflow work items, read the scanned buckets only, write the report and
  # their own temp files only, pull the image.
  run gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$WORKER_SA" \
    --role roles/dataflow.worker --condition None
  csv_each "$SCAN_BUCKETS" grant_scan_bucket
  csv_each "$SCAN_PROJECTS" grant_scan_project
  grant_bucket roles/storage.objectAdmin "serviceAccount:$WORKER_SA" "$REPORT_BUCKET"
  grant_bucket roles/storage.objectAdmin "serviceAccount:$WORKER_SA" "$DATAFLOW_BUCKET"
  run gcloud artifacts repositories add-iam-policy-binding "$AR_REPO" --location "$REGION" \
    --project "$PROJECT" --member "serviceAccount:$WORKER_SA" --role roles/artifactregistry.reader
  if [[ -n "$BQ_DATASET" ]]; then
    # Load jobs run in the project; the dataset grant is in the bigquery step.
    run gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$WORKER_SA" \
      --role roles/bigquery.jobUser --condition None
  fi

  # The launcher (Cloud Scheduler and the launch workflow run as it) may only start a launch:
  # a custom role with exactly that, the right to run jobs as the worker account, and read
  # access to the template spec.
  local permissions="dataflow.jobs.create,dataflow.jobs.get,workflows.executions.create"
  if exists gcloud iam roles describe "$LAUNCHER_ROLE" --project "$PROJECT"; then
    run gcloud iam roles update "$LAUNCHER_ROLE" --project "$PROJECT" --permissions "$permissions" --quiet
  else
    run gcloud iam roles create "$LAUNCHER_ROLE" --project "$PROJECT" --title "registry-scrub launcher" \
      --description "Launch the registry-scrub Flex Template, nothing else" \
      --permissions "$permissions" --stage GA
  fi
  run gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$LAUNCHER_SA" \
    --role "projects/$PROJECT/roles/$LAUNCHER_ROLE" --condition None
  run gcloud iam service-accounts add-iam-policy-binding "$WORKER_SA" --project "$PROJECT" \
    --member "serviceAccount:$LAUNCHER_SA" --role roles/iam.serviceAccountUser
  grant_bucket roles/storage.objectViewer "serviceAccount:$LAUNCHER_SA" "$DATAFLOW_BUCKET"
}

# --- bigquery ---

bq_dataset_ref() { # PROJECT:DATASET -> PROJECT.DATASET for SQL; a bare dataset is in $PROJECT
  local spec="$BQ_DATASET"
  if [[ "$spec" == *[:.]* ]]; then
    echo "${spec%[:.]*}.${spec##*[:.]}"
  else
    echo "${PROJECT}.${spec}"
  fi
}

step_bigquery() {
  if [[ -z "$BQ_DATASET" ]]; then
    echo "= BQ_DATASET is not set: no BigQuery tables (findings stay in the JSONL report)"
    return 0
  fi
  local ref bq_project dataset
  ref="$(bq_dataset_ref)"
  bq_project="${ref%.*}"
  dataset="${ref##*.}"
  ensure bq --project_id "$bq_project" show --dataset "${bq_project}:${dataset}" -- \
    bq --project_id "$bq_project" mk --dataset --location "${BQ_LOCATION:-$REGION}" \
    --description "registry-scrub audit history" "${bq_project}:${dataset}"
  ensure bq --project_id "$bq_project" show "${bq_project}:${dataset}.findings" -- \
    bq --project_id "$bq_project" mk --table --time_partitioning_field scan_date \
    --time_partitioning_type DAY --clustering_fields bucket,kind \
    --schema "$HERE/bq/findings.schema.json" "${bq_project}:${dataset}.findings"
  ensure bq --project_id "$bq_project" show "${bq_project}:${dataset}.summaries" -- \
    bq --project_id "$bq_project" mk --table --time_partitioning_field scan_date \
    --time_partitioning_type DAY --schema "$HERE/bq/summaries.schema.json" \
    "${bq_project}:${dataset}.summaries"
  # Every verified row of every run: the ledger of incremental scans, in BigQuery (docs/incremental.md).
  ensure bq --project_id "$bq_project" show "${bq_project}:${dataset}.verified" -- \
    bq --project_id "$bq_project" mk --table --time_partitioning_field scan_date \
    --time_partitioning_type DAY --clustering_fields bucket,object \
    --schema "$HERE/bq/verified.schema.json" "${bq_project}:${dataset}.verified"
  # Reruns with the same run id append again; the views keep only each run's latest
  # complete attempt (the one that wrote a summary).
  run bq --project_id "$bq_project" query --use_legacy_sql=false --quiet \
    "CREATE OR REPLACE VIEW \`${ref}.summaries_latest\` AS
SELECT * FROM \`${ref}.summaries\`
WHERE TRUE QUALIFY ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY started_at DESC) = 1"
  run bq --project_id "$bq_project" query --use_legacy_sql=false --quiet \
    "CREATE OR REPLACE VIEW \`${ref}.findings_latest\` AS
SELECT f.* FROM \`${ref}.findings\` AS f
JOIN \`${ref}.summaries_latest\` AS s
  ON f.run_id = s.run_id AND f.run_started_at = s.started_at"
  # verified_latest and object_history (each object's outcome run by run), generated by
  # pipeline/core/bq_schema.py with ${ref} standing for the dataset.
  local view
  for view in verified_latest object_history; do
    run bq --project_id "$bq_project" query --use_legacy_sql=false --quiet \
      "$(sed "s/\${ref}/${ref}/g" "$HERE/bq/${view}.view.sql")"
  done
  # The workers append rows to this dataset only.
  run bq --project_id "$bq_project" query --use_legacy_sql=false --quiet \
    "GRANT \`roles/bigquery.dataEditor\` ON SCHEMA \`${ref}\` TO \"serviceAccount:${WORKER_SA}\""
}

# --- image and template ---

step_image() {
  run gcloud builds submit "$REPO" --project "$PROJECT" --region "$REGION" \
    --config "$HERE/cloudbuild.yaml" --substitutions "_IMAGE=${IMAGE}"
}

step_template() {
  local extra=()
  [[ "$DISABLE_PUBLIC_IPS" == 1 ]] && extra+=(--disable-public-ips)
  # The defaults every launch gets: who the workers are, where they stage, how many.
  run gcloud dataflow flex-template build "$TEMPLATE" --project "$PROJECT" \
    --image "$IMAGE" --sdk-language PYTHON --metadata-file "$REPO/jobs/metadata.json" \
    --service-account-email "$WORKER_SA" \
    --temp-location "gs://${DATAFLOW_BUCKET}/tmp" --staging-location "gs://${DATAFLOW_BUCKET}/staging" \
    --worker-machine-type "$MACHINE_TYPE" --max-workers "$MAX_WORKERS" \
    --additional-user-labels "app=registry-scrub" "${extra[@]}"
}

# The template parameters of a scan, as NAME=VALUE lines.
scan_parameters() {
  [[ -n "$SCAN_BUCKETS" ]] && echo "buckets=${SCAN_BUCKETS}"
  [[ -n "$SCAN_PROJECTS" ]] && echo "projects=${SCAN_PROJECTS}"
  echo "output=gs://${REPORT_BUCKET}/${REPORT_PREFIX}"
  echo "shard_count=${SHARD_COUNT}"
  [[ -n "$BQ_DATASET" ]] && echo "bigquery_dataset=${BQ_DATASET}"
  [[ -n "${RUN_ID:-}" ]] && echo "run_id=${RUN_ID}"
  [[ -n "$CONFIG_FILE" ]] && echo "config=${CONFIG_FILE}"
  return 0
}

step_run() {
  need_scan_settings
  local parameters
  # gcloud's alternate delimiter (^~^) keeps the commas inside the bucket list.
  parameters="^~^$(scan_parameters | paste -sd '~' -)"
  run gcloud dataflow flex-template run "registry-scrub-$(date -u +%Y%m%d-%H%M%S)" \
    --project "$PROJECT" --region "$REGION" --template-file-gcs-location "$TEMPLATE" \
    --parameters "$parameters"
}

# --- schedule ---

# The Workflows execution argument: where the template is and what to scan, as JSON text.
launch_argument() {
  local pairs=() line
  while IFS= read -r line; do
    pairs+=("\"${line%%=*}\":\"${line#*=}\"")
  done < <(scan_parameters)
  local IFS=,
  printf '{"project":"%s","region":"%s","template":"%s","parameters":{%s}}' \
    "$PROJECT" "$REGION" "$TEMPLATE" "${pairs[*]}"
}

step_schedule() {
  need_scan_settings
  # Cloud Scheduler sends a fixed body, and a job name must be unique among running jobs,
  # so Scheduler starts a workflow that names each launch (jobs/deploy/launch-workflow.yaml).
  run gcloud workflows deploy "$WORKFLOW" --project "$PROJECT" --location "$REGION" \
    --source "$HERE/launch-workflow.yaml" --service-account "$LAUNCHER_SA" \
    --description "Launches the registry-scrub Flex Template with a unique job name"
  local argument body uri
  argument="$(launch_argument)"
  body="{\"argument\":\"${argument//\"/\\\"}\"}"
  uri="https://workflowexecutions.googleapis.com/v1/projects/${PROJECT}/locations/${REGION}/workflows/${WORKFLOW}/executions"
  # "jobs update http" has no --headers: it takes --update-headers (gcloud reference).
  local verb=create headers=--headers
  if exists gcloud scheduler jobs describe "$SCHEDULER_JOB" --location "$REGION" --project "$PROJECT"; then
    verb=update
    headers=--update-headers
  fi
  run gcloud scheduler jobs "$verb" http "$SCHEDULER_JOB" --project "$PROJECT" --location "$REGION" \
    --schedule "$SCHEDULE" --time-zone "$TIME_ZONE" --uri "$uri" --http-method POST \
    "$headers" "Content-Type=application/json" --message-body "$body" \
    --oauth-service-account-email "$LAUNCHER_SA" \
    --oauth-token-scope "https://www.googleapis.com/auth/cloud-platform"
}

# --- alerts ---

# The structured entries pipeline/transforms/outcome.py writes on Dataflow (pipeline/core/outcome.py):
# one "outcome" entry per run, one "verdict" entry per scanned bucket, in their own log.
outcome_filter() {
  printf 'logName="projects/%s/logs/registry-scrub-outcome" AND jsonPayload.event="%s"' "$PROJECT" "$1"
}

ensure_log_metric() { # ensure_log_metric NAME DESCRIPTION FILTER
  if exists gcloud logging metrics describe "$1" --project "$PROJECT"; then
    run gcloud logging metrics update "$1" --project "$PROJECT" --description "$2" --log-filter "$3"
  else
    run gcloud logging metrics create "$1" --project "$PROJECT" --description "$2" --log-filter "$3"
  fi
}

# alert_policy_json DISPLAY_NAME METRIC DOCUMENTATION: fires when the metric counts an entry.
alert_policy_json() {
  local filter="metric.type=\"logging.googleapis.com/user/$2\" AND resource.type=\"global\""
  printf '{"displayName":"%s","combiner":"OR","documentation":{"content":"%s","mimeType":"text/markdown"},' "$1" "$3"
  printf '"conditions":[{"displayName":"%s","conditionThreshold":{"filter":"%s",' "$2 above 0" "${filter//\"/\\\"}"
  printf '"aggregations":[{"alignmentPeriod":"600s","perSeriesAligner":"ALIGN_SUM"}],'
  printf '"comparison":"COMPARISON_GT","thresholdValue":0,"duration":"0s","trigger":{"count":1}}}]}'
}

ensure_alert_policy() { # ensure_alert_policy DISPLAY_NAME METRIC DOCUMENTATION
  local policy existing=() channels=()
  policy="$(alert_policy_json "$1" "$2" "$3")"
  [[ -n "$ALERT_CHANNELS" ]] && channels=(--notification-channels "$ALERT_CHANNELS")
  if is_dry_run; then
    printf '? '
    show gcloud monitoring policies list --project "$PROJECT" --filter "displayName=\"$1\"" --format 'value(name)'
  else
    mapfile -t existing < <(gcloud monitoring policies list --project "$PROJECT" \
      --filter "displayName=\"$1\"" --format 'value(name)')
  fi
  if ((${#existing[@]})); then
    run gcloud monitoring policies update "${existing[0]}" --project "$PROJECT" --policy "$policy" "${channels[@]}"
  else
    run gcloud monitoring policies create --project "$PROJECT" --policy "$policy" "${channels[@]}"
  fi
}

step_alerts() {
  ensure_log_metric registry_scrub_runs "registry-scrub runs that finished (any exit status)" \
    "$(outcome_filter outcome)"
  ensure_log_metric registry_scrub_error_runs "registry-scrub runs that found errors (exit status 1)" \
    "$(outcome_filter outcome) AND jsonPayload.exit_status=1"
  ensure_log_metric registry_scrub_buckets_would_lose_images \
    "buckets whose deletion would lose images only they hold (decommission verdict would_lose_images)" \
    "$(outcome_filter verdict) AND jsonPayload.verdict=\"would_lose_images\""
  ensure_alert_policy "registry-scrub: a scan found errors" registry_scrub_error_runs \
    "A scheduled registry-scrub run ended with exit status 1: damaged or missing blobs. Read summary.json in the run folder (docs/production.md, Runbook)."
  ensure_alert_policy "registry-scrub: a bucket would lose images" registry_scrub_buckets_would_lose_images \
    "A scanned bucket holds images no other source has: deleting it would lose them. Export them first (docs/recovery.md)."
  [[ -n "$ALERT_CHANNELS" ]] ||
    echo "= ALERT_CHANNELS is not set: the alert policies notify no one until you add channels to them"
}

main() {
  local steps=() arg
  for arg in "$@"; do
    case "$arg" in
      --dry-run) DRY_RUN=1 ;;
      -h | --help) usage 0 ;;
      all) steps+=("${ALL_STEPS[@]}") ;;
      apis | iam | bigquery | image | template | run | schedule | alerts) steps+=("$arg") ;;
      *) echo "deploy: unknown step or flag '$arg'" >&2; usage 2 ;;
    esac
  done
  ((${#steps[@]})) || usage 2
  if ! is_dry_run; then
    command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI, or use --dry-run"
  fi
  settings
  for arg in "${steps[@]}"; do
    echo "## $arg"
    "step_$arg"
  done
}

main "$@"

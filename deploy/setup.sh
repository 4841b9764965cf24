#!/usr/bin/env bash
# The one-time setup of a Google Cloud project for this service
# (docs/deploy.md): APIs, the Firestore database and its TTL policy, the
# secrets, the service accounts with their roles, the Artifact Registry
# repository source deploys push to, the Cloud Scheduler job that runs the
# reconcile job, the log-based metrics and alert policies (docs/operations.md),
# and optionally the Cloud Build trigger that deploys on every push.
#
#   deploy/setup.sh --project=my-project [--region=us-central1]
#   deploy/setup.sh --project=my-project --trigger=OWNER/REPO --frontend-url=https://app.example.com
#   deploy/setup.sh --project=my-project --dry-run     # print the commands, run none
#
# Running it again is safe: whatever it creates is looked up first, and IAM
# bindings and the TTL policy are set, not added twice. The Stripe secret key
# is read from standard input (typed without echo, or piped), never from the
# command line, so it stays out of shell history and process listings.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/setup.sh [options]

  --project=ID              Google Cloud project (default: $PROJECT_ID, then gcloud's configured project)
  --region=REGION           region of the functions, the database and the image repository
                            (default: $REGION, then us-central1)
  --stripe-key-secret=NAME  Secret Manager secret holding the Stripe key (default: stripe-secret-key)
  --webhook-secret-secret=NAME
                            secret holding the webhook signing secret (default: stripe-webhook-secret)
  --runtime-account=NAME    service account the code runs as (default: payments-runtime)
  --deployer-account=NAME   service account Cloud Build deploys as (default: payments-deployer)
  --events-collection=NAME  Firestore collection of processed Stripe events (default: stripe_events)
  --rate-limit-collection=NAME  Firestore collection of shared rate-limit counts (default: rate_limits)
  --reconcile-key-secret=NAME
                            secret holding the reconcile job's restricted Stripe key (default: stripe-reconcile-key)
  --reconcile-account=NAME  service account the reconcile job runs as (default: payments-reconcile)
  --scheduler-account=NAME  service account Cloud Scheduler starts the job as (default: payments-scheduler)
  --reconcile-job=NAME      the Cloud Run job the build deploys (default: payments-reconcile)
  --reconcile-schedule=CRON when it runs, in UTC (default: hourly, '7 * * * *')
  --notification-channel=NAME
                            where alerts are sent: projects/ID/notificationChannels/N (default: none,
                            alerts show in the console only)
  --operator=MEMBER         who starts builds as the deployer, e.g. user:you@example.com
                            (default: the account gcloud is logged in with)
  --trigger=OWNER/REPO      also create a Cloud Build trigger deploying this GitHub repository
  --branch=NAME             the branch the trigger deploys (default: main)
  --trigger-name=NAME       (default: payments-deploy)
  --frontend-url=URL        the frontend's URL, needed with --trigger (the build's _FRONTEND_URL)
  --dry-run                 print each command, one per line, shell-quoted; run nothing
EOF
}

die() { echo "setup.sh: $*" >&2; exit 1; }
note() { echo "==> $*" >&2; }

project=${PROJECT_ID:-}
region=${REGION:-us-central1}
stripe_key_secret=stripe-secret-key
webhook_secret_secret=stripe-webhook-secret
runtime_account=payments-runtime
deployer_account=payments-deployer
events_collection=stripe_events
rate_limit_collection=rate_limits
reconcile_key_secret=stripe-reconcile-key
reconcile_account=payments-reconcile
scheduler_account=payments-scheduler
reconcile_job=payments-reconcile
reconcile_schedule='7 * * * *'
notification_channel=
operator=
trigger=
branch=main
trigger_name=payments-deploy
frontend_url=
dry_run=0

set_option() {
  case "$1" in
    --project) project=$2 ;;
    --region) region=$2 ;;
    --stripe-key-secret) stripe_key_secret=$2 ;;
    --webhook-secret-secret) webhook_secret_secret=$2 ;;
    --runtime-account) runtime_account=$2 ;;
    --deployer-account) deployer_account=$2 ;;
    --events-collection) events_collection=$2 ;;
    --rate-limit-collection) rate_limit_collection=$2 ;;
    --reconcile-key-secret) reconcile_key_secret=$2 ;;
    --reconcile-account) reconcile_account=$2 ;;
    --scheduler-account) scheduler_account=$2 ;;
    --reconcile-job) reconcile_job=$2 ;;
    --reconcile-schedule) reconcile_schedule=$2 ;;
    --notification-channel) notification_channel=$2 ;;
    --operator) operator=$2 ;;
    --trigger) trigger=$2 ;;
    --branch) branch=$2 ;;
    --trigger-name) trigger_name=$2 ;;
    --frontend-url) frontend_url=$2 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --*=*) set_option "${1%%=*}" "${1#*=}" ;;
    *) set_option "$1" "${2-}"; [ $# -ge 2 ] || die "$1 needs a value"; shift ;;
  esac
  shift
done

# --dry-run runs nothing at all, not even gcloud's read of its own configuration.
if [ "$dry_run" = 0 ]; then
  command -v gcloud >/dev/null || die "gcloud is not installed: https://cloud.google.com/sdk/docs/install"
  [ -n "$project" ] || project=$(gcloud config get-value project 2>/dev/null || true)
fi
[ -n "$project" ] || die "name the project: --project=ID"
if [ -n "$trigger" ]; then
  [[ "$trigger" == */* ]] || die "--trigger takes OWNER/REPO, not '$trigger'"
  [ -n "$frontend_url" ] || die "--trigger needs --frontend-url=URL: the trigger's builds deploy with it"
fi

runtime_email="$runtime_account@$project.iam.gserviceaccount.com"
deployer_email="$deployer_account@$project.iam.gserviceaccount.com"
deployer_resource="projects/$project/serviceAccounts/$deployer_email"
reconcile_email="$reconcile_account@$project.iam.gserviceaccount.com"
scheduler_email="$scheduler_account@$project.iam.gserviceaccount.com"
monitoring_dir="$(dirname "$0")/monitoring"

# Runs a command, or under --dry-run prints it as one shell-quoted line.
run() {
  if [ "$dry_run" = 1 ]; then
    printf '%q' "$1"
    shift
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# Whether a `describe` finds the resource. Under --dry-run the lookup is
# printed and answers "no", so the create that follows is printed as well.
exists() {
  if [ "$dry_run" = 1 ]; then
    run "$@"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# IAM may not know an account, nor Monitoring a log-based metric, for a few
# seconds after it was created.
retrying() {
  local attempt
  for attempt in 1 2 3 4 5; do
    run "$@" && return 0
    [ "$dry_run" = 0 ] || return 0
    note "retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  return 1
}

bind() { retrying "$@" --format=none; }

# A log-based counter metric: created, or brought up to date with the filter
# here, which follows the fields the code writes in its log lines.
metric() {
  local name=$1 description=$2 filter=$3
  if exists gcloud logging metrics describe "$name" --project="$project"; then
    run gcloud logging metrics update "$name" --description="$description" --log-filter="$filter" --project="$project"
  else
    run gcloud logging metrics create "$name" --description="$description" --log-filter="$filter" --project="$project"
  fi
}

# Sets found_policy to the name of the alert policy with this display name, if
# there is one. Under --dry-run the lookup is printed and finds nothing.
find_policy() {
  local lookup=(gcloud alpha monitoring policies list --filter="displayName=\"$1\"" --format="value(name)"
    --project="$project")
  found_policy=
  if [ "$dry_run" = 1 ]; then
    run "${lookup[@]}"
  else
    found_policy=$("${lookup[@]}" | head -n 1)
  fi
}

# A secret whose first version is VALUE. gcloud reads the value from standard
# input (printf is a shell builtin), so it never appears in a process's arguments.
create_secret() {
  local name=$1 value=$2
  if [ "$dry_run" = 1 ]; then
    run gcloud secrets create "$name" --replication-policy=automatic --data-file=- --project="$project"
  else
    printf '%s' "$value" | gcloud secrets create "$name" --replication-policy=automatic --data-file=- \
      --project="$project"
  fi
}

read_stripe_key() {
  local key
  if [ -t 0 ]; then
    printf 'Stripe secret key (sk_test_… or a restricted rk_test_… key; not shown): ' >&2
    IFS= read -rs key
    echo >&2
  else
    IFS= read -r key || true
  fi
  case "$key" in
    sk_test_*|rk_test_*|sk_live_*|rk_live_*) ;;
    *) die "that is not a Stripe secret key (sk_… or rk_…)" ;;
  esac
  printf '%s' "$key"
}

note "Project $project, region $region"

note "APIs the build, the functions and this script use"
run gcloud services enable run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
  secretmanager.googleapis.com firestore.googleapis.com iam.googleapis.com cloudscheduler.googleapis.com \
  logging.googleapis.com monitoring.googleapis.com --project="$project"

note "Firestore database (Native mode)"
if ! exists gcloud firestore databases describe --database='(default)' --project="$project"; then
  run gcloud firestore databases create --database='(default)' --location="$region" --type=firestore-native \
    --project="$project"
fi

# Stripe retries a delivery for up to 3 days; an event is kept 30 (its
# expires_at) so a late retry is still recognised, then Firestore deletes it.
note "TTL policy: $events_collection documents expire at their expires_at"
run gcloud firestore fields ttls update expires_at --collection-group="$events_collection" --enable-ttl \
  --database='(default)' --async --project="$project"

# Shared rate-limit counts (RATE_LIMIT_STORAGE_URI=firestore://): one small
# document per client and window, deleted once its window has ended, and
# never queried, so their fields need no index (indexes cost writes).
note "TTL policy and no indexes: $rate_limit_collection documents"
run gcloud firestore fields ttls update expires_at --collection-group="$rate_limit_collection" --enable-ttl \
  --database='(default)' --async --project="$project"
for field in count expires_at; do
  run gcloud firestore indexes fields update "$field" --collection-group="$rate_limit_collection" \
    --disable-indexes --database='(default)' --async --project="$project"
done

note "Secret $stripe_key_secret (the Stripe secret key)"
if exists gcloud secrets describe "$stripe_key_secret" --project="$project"; then
  note "it exists; change it by adding a version (docs/deploy.md, Secrets)"
else
  key=
  [ "$dry_run" = 1 ] || key=$(read_stripe_key)
  create_secret "$stripe_key_secret" "$key"
  key=
fi

note "Secret $webhook_secret_secret (the webhook signing secret)"
if exists gcloud secrets describe "$webhook_secret_secret" --project="$project"; then
  note "it exists; change it by adding a version (docs/deploy.md, Register the webhook)"
else
  # A placeholder until the webhook is registered and Stripe shows its secret.
  create_secret "$webhook_secret_secret" whsec_placeholder
fi

note "Secret $reconcile_key_secret (the reconcile job's restricted Stripe key)"
if exists gcloud secrets describe "$reconcile_key_secret" --project="$project"; then
  note "it exists; change it by adding a version (docs/operations.md, The reconcile job)"
else
  # A placeholder the job refuses by name until a restricted key (Events and
  # Checkout Sessions read) is added as a version: docs/operations.md.
  create_secret "$reconcile_key_secret" placeholder-add-a-restricted-key
fi

note "Service account $runtime_email: what the code runs as"
if ! exists gcloud iam service-accounts describe "$runtime_email" --project="$project"; then
  run gcloud iam service-accounts create "$runtime_account" --display-name="Payments functions at run time" \
    --project="$project"
fi
# It reads the two secrets (bound per secret, not project-wide) and the Firestore database, nothing else.
for secret in "$stripe_key_secret" "$webhook_secret_secret"; do
  bind gcloud secrets add-iam-policy-binding "$secret" --member="serviceAccount:$runtime_email" \
    --role=roles/secretmanager.secretAccessor --project="$project"
done
bind gcloud projects add-iam-policy-binding "$project" --member="serviceAccount:$runtime_email" \
  --role=roles/datastore.user --condition=None

note "Service account $reconcile_email: what the reconcile job runs as"
if ! exists gcloud iam service-accounts describe "$reconcile_email" --project="$project"; then
  run gcloud iam service-accounts create "$reconcile_account" --display-name="Payments reconcile job" \
    --project="$project"
fi
# It reads its own restricted Stripe key and the Firestore database, nothing else.
bind gcloud secrets add-iam-policy-binding "$reconcile_key_secret" --member="serviceAccount:$reconcile_email" \
  --role=roles/secretmanager.secretAccessor --project="$project"
bind gcloud projects add-iam-policy-binding "$project" --member="serviceAccount:$reconcile_email" \
  --role=roles/datastore.user --condition=None

note "Service account $scheduler_email: what Cloud Scheduler starts the reconcile job as"
# Its one role, roles/run.invoker on the job alone, is bound by the build right
# after it deploys the job (cloudbuild.yaml): the job does not exist before.
if ! exists gcloud iam service-accounts describe "$scheduler_email" --project="$project"; then
  run gcloud iam service-accounts create "$scheduler_account" --display-name="Payments reconcile schedule" \
    --project="$project"
fi

note "Service account $deployer_email: what Cloud Build runs as and builds the images with"
if ! exists gcloud iam service-accounts describe "$deployer_email" --project="$project"; then
  run gcloud iam service-accounts create "$deployer_account" --display-name="Payments Cloud Build deployer" \
    --project="$project"
fi
# It deploys from source and makes the services public (setting a service's
# IAM policy needs run.admin, not run.developer), runs the builds that write
# the images, and writes the build logs.
for role in roles/run.admin roles/run.sourceDeveloper roles/cloudbuild.builds.builder roles/logging.logWriter; do
  bind gcloud projects add-iam-policy-binding "$project" --member="serviceAccount:$deployer_email" \
    --role="$role" --condition=None
done
# It acts as the accounts the code runs as (to deploy it) and as itself (to build).
for account in "$runtime_email" "$reconcile_email" "$deployer_email"; do
  bind gcloud iam service-accounts add-iam-policy-binding "$account" --member="serviceAccount:$deployer_email" \
    --role=roles/iam.serviceAccountUser --project="$project"
done
# Whoever starts builds as the deployer must be able to act as it (owners already can).
if [ -z "$operator" ]; then
  if [ "$dry_run" = 1 ]; then
    operator="user:you@example.com"
  else
    account=$(gcloud config get-value account 2>/dev/null || true)
    [ -n "$account" ] || die "gcloud has no account: run gcloud auth login, or pass --operator=MEMBER"
    case "$account" in
      *.gserviceaccount.com) operator="serviceAccount:$account" ;;
      *) operator="user:$account" ;;
    esac
  fi
fi
bind gcloud iam service-accounts add-iam-policy-binding "$deployer_email" --member="$operator" \
  --role=roles/iam.serviceAccountUser --project="$project"

note "Artifact Registry repository for source deploys"
# Created here so the deployer needs no Artifact Registry admin role.
if ! exists gcloud artifacts repositories describe cloud-run-source-deploy --location="$region" --project="$project"; then
  run gcloud artifacts repositories create cloud-run-source-deploy --repository-format=docker \
    --location="$region" --description="Cloud Run source deployments" --project="$project"
fi

note "Cloud Scheduler job $reconcile_job: runs the reconcile job ($reconcile_schedule, UTC)"
if ! exists gcloud scheduler jobs describe "$reconcile_job" --location="$region" --project="$project"; then
  run gcloud scheduler jobs create http "$reconcile_job" --location="$region" --schedule="$reconcile_schedule" \
    --time-zone=Etc/UTC --http-method=POST \
    --uri="https://run.googleapis.com/v2/projects/$project/locations/$region/jobs/$reconcile_job:run" \
    --oauth-service-account-email="$scheduler_email" \
    --description="Reconcile payments with Stripe (docs/operations.md)" --project="$project"
fi

# The fields these filters read are the ones the code writes on its log lines
# (common/http.py, webhook/handler.py, payments/reconcile.py); a test keeps
# each filter matching the lines it counts.
note "Log-based metrics (docs/operations.md)"
metric payments_webhook_5xx "Webhook deliveries answered 5xx: Stripe retries them" \
  'resource.type="cloud_run_revision" AND jsonPayload.endpoint="stripe_webhook" AND severity>=ERROR'
metric payments_webhook_signature_failures "Webhook deliveries whose Stripe-Signature no configured secret verifies" \
  'resource.type="cloud_run_revision" AND jsonPayload.endpoint="stripe_webhook" AND jsonPayload.status=400 AND jsonPayload.signature="unverified"'
metric payments_checkout_stripe_errors "Checkout Sessions Stripe failed to create" \
  'resource.type="cloud_run_revision" AND jsonPayload.endpoint="create_embedded_session" AND jsonPayload.error=("ProviderUnavailable" OR "ProviderBusy" OR "ProviderRefused")'
metric payments_recorded "Payments recorded as paid, by the webhook or the reconcile job (one per payment)" \
  'resource.type=("cloud_run_revision" OR "cloud_run_job") AND jsonPayload.outcome="recorded" AND jsonPayload.payment_status="paid" AND jsonPayload.event_type=("checkout.session.completed" OR "checkout.session.async_payment_succeeded")'
metric payments_reconcile_missed_events "Events the reconcile job recorded because the webhook had not" \
  'resource.type="cloud_run_job" AND jsonPayload.reconcile="event" AND jsonPayload.outcome="recorded"'
metric payments_reconcile_unrecorded_sessions "Checkout Sessions complete at Stripe without a payment record" \
  'resource.type="cloud_run_job" AND jsonPayload.reconcile="session"'
metric payments_reconcile_failures "Reconcile runs that could not list or apply every event" \
  'resource.type="cloud_run_job" AND jsonPayload.reconcile="summary" AND jsonPayload.outcome="failed"'
metric payments_reconcile_runs "Reconcile runs that reached their summary" \
  'resource.type="cloud_run_job" AND jsonPayload.reconcile="summary"'

note "Alert policies from $monitoring_dir (a policy that exists is left as it is)"
for file in "$monitoring_dir"/*.yaml; do
  display_name=$(sed -n 's/^displayName: *"\(.*\)"$/\1/p' "$file")
  [ -n "$display_name" ] || die "$file has no displayName"
  find_policy "$display_name"
  if [ -z "$found_policy" ]; then
    retrying gcloud alpha monitoring policies create --policy-from-file="$file" \
      ${notification_channel:+--notification-channels="$notification_channel"} --project="$project"
  elif [ -n "$notification_channel" ]; then
    run gcloud alpha monitoring policies update "$found_policy" --add-notification-channels="$notification_channel" \
      --project="$project"
  fi
done

# What the build needs to know about the choices made here.
substitutions="_REGION=$region,_STRIPE_KEY_SECRET=$stripe_key_secret,_WEBHOOK_SECRET_SECRET=$webhook_secret_secret"
substitutions+=",_EVENTS_COLLECTION=$events_collection,_RUNTIME_SA=$runtime_email,_BUILD_SA=$deployer_resource"
substitutions+=",_RECONCILE_JOB=$reconcile_job,_RECONCILE_SA=$reconcile_email"
substitutions+=",_RECONCILE_KEY_SECRET=$reconcile_key_secret,_RECONCILE_INVOKER_SA=$scheduler_email"

if [ -n "$trigger" ]; then
  note "Cloud Build trigger $trigger_name: deploys $trigger on every push to $branch"
  if ! exists gcloud builds triggers describe "$trigger_name" --project="$project"; then
    run gcloud builds triggers create github --name="$trigger_name" \
      --repo-owner="${trigger%%/*}" --repo-name="${trigger#*/}" --branch-pattern="^$branch\$" \
      --build-config=cloudbuild.yaml --service-account="$deployer_resource" \
      --substitutions="_FRONTEND_URL=$frontend_url,$substitutions" --project="$project"
  fi
fi

note "Done. Deploy from the repository root with:"
cat >&2 <<EOF
  gcloud builds submit --project=$project --config=cloudbuild.yaml --ignore-file=.gcloudignore.build \\
    --service-account=$deployer_resource \\
    --substitutions=_FRONTEND_URL=https://YOUR-FRONTEND,$substitutions
then register the webhook in Stripe (docs/deploy.md), and give the reconcile job its restricted
key (docs/operations.md).
EOF

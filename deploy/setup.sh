#!/usr/bin/env bash
# The one-time setup of a Google Cloud project for this service
# (docs/deploy.md): APIs, the Firestore database and its TTL policy, the two
# secrets, the runtime and deployer service accounts with their roles, the
# Artifact Registry repository source deploys push to, and optionally the
# Cloud Build trigger that deploys on every push.
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

# IAM may not know an account for a few seconds after creating it.
bind() {
  local attempt
  for attempt in 1 2 3 4 5; do
    run "$@" --format=none && return 0
    [ "$dry_run" = 0 ] || return 0
    note "retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  return 1
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
  secretmanager.googleapis.com firestore.googleapis.com iam.googleapis.com --project="$project"

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
# It acts as the runtime account (to deploy code that runs as it) and as itself (to build).
for account in "$runtime_email" "$deployer_email"; do
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

# What the build needs to know about the choices made here.
substitutions="_REGION=$region,_STRIPE_KEY_SECRET=$stripe_key_secret,_WEBHOOK_SECRET_SECRET=$webhook_secret_secret"
substitutions+=",_EVENTS_COLLECTION=$events_collection,_RUNTIME_SA=$runtime_email,_BUILD_SA=$deployer_resource"

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
then register the webhook in Stripe (docs/deploy.md).
EOF

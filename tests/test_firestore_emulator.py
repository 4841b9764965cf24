"""The real google-cloud-firestore client works against the local emulator.

These tests pin down what the app may rely on when its Firestore code is
tested on the emulator, what the emulator gets wrong (so nobody trusts it
there), and how fast the client gives up when Firestore is unreachable.
"""

import datetime
import socket
import time

import pytest
from google.api_core import exceptions
from google.api_core.retry import Retry
from google.cloud import firestore

from devtools.firestore_emulator import EmulatorError, start_firestore_emulator


@pytest.fixture
def db(firestore_project):
    return firestore.Client(project=firestore_project)


def test_create_refuses_an_existing_document(db):
    ref = db.collection("payments").document("pi_1")
    ref.create({"amount": 500})

    with pytest.raises(exceptions.AlreadyExists) as caught:
        ref.create({"amount": 999})

    assert isinstance(caught.value, exceptions.Conflict)
    assert ref.get().to_dict() == {"amount": 500}


def test_get_set_merge_and_update(db):
    ref = db.collection("payments").document("pi_1")
    assert not ref.get().exists

    ref.set({"amount": 500, "status": "pending"})
    ref.set({"currency": "eur"}, merge=True)
    ref.update({"status": "succeeded"})

    assert ref.get().to_dict() == {"amount": 500, "status": "succeeded", "currency": "eur"}
    with pytest.raises(exceptions.NotFound):
        db.collection("payments").document("missing").update({"status": "x"})


def test_server_timestamp_is_set_by_the_server(db):
    ref = db.collection("payments").document("pi_1")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)

    ref.set({"created_at": firestore.SERVER_TIMESTAMP})

    created_at = ref.get().get("created_at")
    assert isinstance(created_at, datetime.datetime)
    assert before < created_at < before + datetime.timedelta(seconds=65)


def test_query_with_where(db):
    payments = db.collection("payments")
    payments.document("a").set({"status": "succeeded", "amount": 1})
    payments.document("b").set({"status": "pending", "amount": 2})
    payments.document("c").set({"status": "succeeded", "amount": 3})

    query = payments.where(filter=firestore.FieldFilter("status", "==", "succeeded"))

    assert sorted(snap.id for snap in query.stream()) == ["a", "c"]


def test_projects_do_not_share_data(firestore_project):
    firestore.Client(project=firestore_project).document("c/d").set({"x": 1})

    assert not firestore.Client(project=firestore_project + "-other").document("c/d").get().exists


def test_transaction_read_modify_write(db):
    ref = db.collection("balances").document("user_1")
    ref.set({"cents": 100})

    @firestore.transactional
    def add(transaction, cents):
        current = ref.get(transaction=transaction).get("cents")
        transaction.update(ref, {"cents": current + cents})

    add(db.transaction(), 50)
    add(db.transaction(), 25)

    assert ref.get().get("cents") == 175


def test_transaction_creates_a_missing_document_once(db):
    ref = db.collection("idempotency_keys").document("key_1")

    @firestore.transactional
    def claim(transaction):
        if ref.get(transaction=transaction).exists:
            return False
        transaction.create(ref, {"claimed_at": firestore.SERVER_TIMESTAMP})
        return True

    assert claim(db.transaction()) is True
    assert claim(db.transaction()) is False
    assert ref.get().exists


# --- Unreachable Firestore: the app must fail fast, not hang. ---


@pytest.fixture
def unreachable_db(monkeypatch):
    """A client whose emulator address has nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    return firestore.Client(project="unreachable")


def test_unreachable_without_retry_fails_at_once(unreachable_db):
    started = time.monotonic()
    with pytest.raises(exceptions.ServiceUnavailable):
        unreachable_db.document("c/d").get(retry=None, timeout=3)
    assert time.monotonic() - started < 2


def test_unreachable_with_short_retry_gives_up_at_its_deadline(unreachable_db):
    """Without explicit arguments the client retries for 35-300 s; a short Retry caps it."""
    started = time.monotonic()
    with pytest.raises(exceptions.RetryError) as caught:
        unreachable_db.document("c/d").set({"x": 1}, retry=Retry(timeout=1.5), timeout=3)
    assert time.monotonic() - started < 5
    assert isinstance(caught.value.cause, exceptions.ServiceUnavailable)


# --- The launcher reports why it failed. ---


def test_missing_node_is_reported(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(EmulatorError, match="node is not on PATH"):
        start_firestore_emulator()


def test_start_failure_includes_the_emulator_output():
    with pytest.raises(EmulatorError, match="exited before it was ready") as caught:
        start_firestore_emulator(host="256.0.0.1")
    assert "256.0.0.1" in str(caught.value)


# --- Known gaps of this emulator: tests must not rely on these. ---
# Each test asserts today's wrong behaviour, so an upgrade that fixes it shows up here.


def test_gap_set_without_merge_keeps_old_fields(db):
    ref = db.document("c/d")
    ref.set({"a": 1, "b": 2})
    ref.set({"a": 3})
    assert ref.get().to_dict() == {"a": 3, "b": 2}  # real Firestore: {"a": 3}


def test_gap_only_the_first_server_timestamp_of_a_write_is_applied(db):
    ref = db.document("c/d")
    ref.set({"created_at": firestore.SERVER_TIMESTAMP, "updated_at": firestore.SERVER_TIMESTAMP})
    assert sorted(ref.get().to_dict()) == ["created_at"]


def test_gap_delete_field_is_ignored(db):
    ref = db.document("c/d")
    ref.set({"a": 1, "b": 2})
    ref.update({"b": firestore.DELETE_FIELD})
    assert ref.get().to_dict() == {"a": 1, "b": 2}


def test_gap_batch_is_not_atomic(db):
    db.document("c/existing").set({"a": 1})
    batch = db.batch()
    batch.set(db.document("c/new"), {"a": 1})
    batch.create(db.document("c/existing"), {"a": 2})
    with pytest.raises(exceptions.AlreadyExists):
        batch.commit()
    assert db.document("c/new").get().exists  # real Firestore: nothing written


def test_gap_unsupported_calls_fail_with_unknown(db):
    db.document("c/d").set({"nested": {"v": 1}})
    with pytest.raises(exceptions.Unknown):
        list(db.collection("c").list_documents())
    with pytest.raises(exceptions.Unknown):
        list(db.collection("c").where(filter=firestore.FieldFilter("nested.v", "==", 1)).stream())

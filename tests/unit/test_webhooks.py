"""Webhook signatures (Standard Webhooks v1), secrets, the address guard and the retry
schedule: pure functions, plus the guard inside a real aiohttp connector on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from agents.timers.webhook_guard import (
    AddressRefusedError,
    GuardedResolver,
    address_refusal,
    check_target,
    check_urls,
    guarded_socket_factory,
    refusal_in,
)
from agents.timers.webhook_sender import open_session, post
from models.followup_rules import WebhookSpec
from models.store.tables import WebhookDelivery
from models.webhook_retries import (
    RETRY_SCHEDULE_S,
    Attempt,
    attempt_for_status,
    parse_retry_after,
    retry_delay,
)
from models.webhook_signing import (
    SignatureInvalidError,
    WebhookConfigError,
    WebhookSecretError,
    load_secrets,
    parse_secret,
    sign,
    signed_headers,
    verify,
)

# The example in the Standard Webhooks reference libraries (libraries/python/tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the published test key
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = '{"event_type":"task_opened","task_id":"t-1","team":"complaints"}'
NOW = 1_760_000_000


# --- signatures ---------------------------------------------------------------------------


def test_the_published_standard_webhooks_example_is_signed_the_same() -> None:
    key = parse_secret(SPEC_SECRET, "test")
    assert sign(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_by_hand() -> None:
    by_hand = hmac.new(KEY, f"msg_1.{NOW}.{BODY}".encode(), hashlib.sha256).digest()
    headers = signed_headers(parse_secret(SECRET, "test"), "msg_1", NOW, BODY.encode())
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(by_hand).decode(),
    }


def test_verify_accepts_a_fresh_signature_among_others_and_any_header_case() -> None:
    headers = signed_headers(KEY, "msg_1", NOW, BODY)
    rotated = {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(NOW),
        "Webhook-Signature": "v1,c29tZSBvbGQga2V5 " + headers["webhook-signature"],
    }
    verify(KEY, rotated, BODY, now=NOW + 299)
    verify(KEY, headers, BODY.encode(), now=NOW - 299)


@pytest.mark.parametrize(
    ("headers", "body", "key", "now", "message"),
    [
        ({}, BODY.replace("t-1", "t-2"), KEY, NOW, "no matching v1 signature"),
        ({"webhook-id": "msg_2"}, BODY, KEY, NOW, "no matching v1 signature"),
        ({}, BODY, bytes(32), NOW, "no matching v1 signature"),
        ({}, BODY, KEY, NOW + 301, "outside the tolerance"),
        ({}, BODY, KEY, NOW - 301, "outside the tolerance"),
        ({"webhook-timestamp": "soon"}, BODY, KEY, NOW, "not an integer"),
        ({"webhook-signature": ""}, BODY, KEY, NOW, "missing"),
    ],
)
def test_verify_refuses_a_tampered_stale_or_incomplete_webhook(
    headers: dict[str, str], body: str, key: bytes, now: int, message: str
) -> None:
    sent = {**signed_headers(KEY, "msg_1", NOW, BODY), **headers}
    with pytest.raises(SignatureInvalidError, match=message):
        verify(key, sent, body, now=now)


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (base64.b64encode(KEY).decode(), "must start with 'whsec_'"),
        ("whsec_not*base64", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24..64 bytes, not 5"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24..64 bytes, not 65"),
    ],
)
def test_a_malformed_secret_is_a_clear_error(value: str, message: str) -> None:
    with pytest.raises(WebhookSecretError, match=message):
        parse_secret(value, "CXLOOP_HOOK")


def spec(name: str = "crm", **overrides: object) -> WebhookSpec:
    fields: dict[str, object] = {
        "name": name,
        "url": "https://hooks.example.com/cxloop",
        "secret_env": f"HOOK_{name.upper()}",
        **overrides,
    }
    return WebhookSpec.model_validate(fields)


def test_secrets_come_from_each_webhooks_environment_variable() -> None:
    keys = load_secrets([spec("crm"), spec("bi")], {"HOOK_CRM": SECRET, "HOOK_BI": SPEC_SECRET})
    assert keys == {"crm": KEY, "bi": parse_secret(SPEC_SECRET, "x")}


def test_a_missing_secret_names_the_variable_and_a_bad_one_never_shows_its_value() -> None:
    with pytest.raises(WebhookSecretError, match="'bi': environment variable HOOK_BI is not set"):
        load_secrets([spec("crm"), spec("bi")], {"HOOK_CRM": SECRET})
    bad = "whsec_c2VjcmV0LXZhbHVl"
    with pytest.raises(WebhookSecretError) as caught:
        load_secrets([spec("crm")], {"HOOK_CRM": bad})
    assert "HOOK_CRM" in str(caught.value)
    assert "c2VjcmV0LXZhbHVl" not in str(caught.value)


# --- the address guard --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("169.254.169.254", "link-local"),
        ("fe80::1%2", "link-local"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.254", "shared (CGNAT)"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # Python counts the reserved 240/4 among the private
        ("198.18.0.1", "private"),
    ],
)
def test_loopback_private_and_special_addresses_are_refused(address: str, kind: str) -> None:
    reason = address_refusal(address, allow_private=False)
    assert reason is not None
    assert reason.endswith(f" {kind} address")


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address, allow_private=False) is None


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("fd00::1", False),
        ("0.0.0.0", True),  # noqa: S104 - an address to refuse, not to bind
    ],
)
def test_allow_private_opens_private_networks_but_never_unspecified(
    address: str, refused: bool
) -> None:
    assert (address_refusal(address, allow_private=True) is not None) is refused


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "http:///no-host",
    ],
)
def test_urls_refused_before_connecting(url: str) -> None:
    with pytest.raises(AddressRefusedError, match="refused"):
        check_target(url, allow_private=False)


def test_names_and_public_literals_are_left_to_the_resolver() -> None:
    check_target("https://hooks.example.com/cxloop", allow_private=False)
    check_target("https://93.184.216.34/cxloop", allow_private=False)
    check_target("http://127.0.0.1:8080/hook", allow_private=True)


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses (a stand-in for DNS)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    resolver = GuardedResolver(allow_private=False)
    with pytest.raises(AddressRefusedError, match=r"localhost resolves to .* loopback address"):
        await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
    await resolver.close()


async def test_a_name_with_any_private_address_among_public_ones_is_refused() -> None:
    mixed = GuardedResolver(False, FixedResolver("93.184.216.34", "10.0.0.7"))
    with pytest.raises(AddressRefusedError, match=r"rebind\.example resolves to 10\.0\.0\.7"):
        await mixed.resolve("rebind.example", 443)
    public = GuardedResolver(False, FixedResolver("93.184.216.34"))
    assert [r["host"] for r in await public.resolve("ok.example", 443)] == ["93.184.216.34"]
    allowed = GuardedResolver(True, FixedResolver("10.0.0.7"))
    assert [r["host"] for r in await allowed.resolve("intranet.example", 443)] == ["10.0.0.7"]


def test_the_socket_factory_refuses_the_address_it_would_connect_to() -> None:
    factory = guarded_socket_factory(allow_private=False)
    with pytest.raises(AddressRefusedError, match=r"127\.0\.0\.1 is a loopback address"):
        factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    with factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))) as sock:
        assert sock.family == socket.AF_INET


@dataclass
class Receiver:
    """Where the test server listens, and the (headers, body) of each request it got."""

    port: int
    seen: list[tuple[Mapping[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that keeps the requests it gets."""
    seen: list[tuple[Mapping[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.headers.copy(), await request.read()))  # case-insensitive
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Receiver(port=runner.addresses[0][1], seen=seen)
    await runner.cleanup()


async def test_the_connector_refuses_a_name_that_rebinds_to_loopback_at_connect_time(
    receiver: Receiver,
) -> None:
    """A resolver that lets 127.0.0.1 through (a name switched after the check, or a cache)
    still cannot connect: the socket factory checks the address itself."""
    connector = aiohttp.TCPConnector(
        resolver=FixedResolver("127.0.0.1"),
        socket_factory=guarded_socket_factory(allow_private=False),
        use_dns_cache=False,
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.post(f"http://rebound.example:{receiver.port}/hook", data=b"{}")
    refused = refusal_in(caught.value)
    assert refused is not None
    assert "127.0.0.1 is a loopback address" in str(refused)
    assert receiver.seen == []


async def test_the_connector_refuses_a_name_resolving_to_a_private_address(
    receiver: Receiver,
) -> None:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(False, FixedResolver("127.0.0.1")), use_dns_cache=False
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.post(f"http://intranet.example:{receiver.port}/hook", data=b"{}")
    refused = refusal_in(caught.value)
    assert refused is not None
    assert "intranet.example resolves to 127.0.0.1 is a loopback address" in str(refused)
    assert receiver.seen == []


def test_webhook_urls_need_http_and_a_host_at_start() -> None:
    check_urls([spec(url="https://hooks.example.com/x"), spec("bi", url="http://10.0.0.1/x")])
    with pytest.raises(WebhookConfigError, match="'crm': the url needs http"):
        check_urls([spec(url="http://")])
    with pytest.raises(WebhookConfigError, match="'crm': the url is not a URL"):
        check_urls([spec(url="http://[::1/x")])


# --- outcomes and the retry schedule ------------------------------------------------------


def test_the_retry_schedule_grows_to_hourly_and_stays_there() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays == [2, 30, 120, 600, 1800, 3600, 3600, 3600, 3600]
    assert RETRY_SCHEDULE_S[-1] == 3600


def test_jitter_adds_at_most_a_tenth_and_retry_after_can_only_lengthen() -> None:
    assert retry_delay(2, jitter=0.999) < timedelta(seconds=33)
    assert retry_delay(2, jitter=0.5) == timedelta(seconds=31.5)
    assert retry_delay(1, retry_after_s=90) == timedelta(seconds=90)
    assert retry_delay(3, retry_after_s=5) == timedelta(seconds=120)
    assert retry_delay(1, retry_after_s=86_400) == timedelta(hours=1)


NOW_DT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "delivered", "final", "error"),
    [
        (200, True, False, None),
        (204, True, False, None),
        (500, False, False, "HTTP 500"),
        (404, False, False, "HTTP 404"),
        (301, False, False, "HTTP 301 (redirects are not followed)"),
        (410, False, True, "HTTP 410 Gone: the receiver stopped"),
    ],
)
def test_only_2xx_delivers_and_410_gives_up(
    status: int, delivered: bool, final: bool, error: str | None
) -> None:
    attempt = attempt_for_status(status, None, NOW_DT)
    assert (attempt.delivered, attempt.final, attempt.error) == (delivered, final, error)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("120", NOW_DT) == 120
    assert parse_retry_after("Mon, 02 Mar 2026 09:05:00 GMT", NOW_DT) == 300
    assert parse_retry_after("whenever", NOW_DT) is None
    assert attempt_for_status(503, "60", NOW_DT).retry_after_s == 60


async def post_once(hook: WebhookSpec, delivery_id: str) -> Attempt:
    """The agent's own POST of one stored delivery of BODY, through its guarded session."""
    row = WebhookDelivery(
        delivery_id=delivery_id,
        webhook=hook.name,
        event_id="e-1",
        payload=BODY,
        next_attempt_at=NOW_DT,
        created_at=NOW_DT,
    )
    async with open_session(hook, 2.0) as session:
        return await post(session, hook, KEY, row, lambda: NOW_DT)


async def test_post_refuses_loopback_without_calling_it(receiver: Receiver) -> None:
    """The agent's own POST: a webhook without allow_private to 127.0.0.1 is a final
    failure naming the address, and the server never sees a request."""
    attempt = await post_once(spec(url=receiver.url), "msg_x")
    assert attempt.final
    assert attempt.error is not None
    assert "127.0.0.1 is a loopback address" in attempt.error
    assert receiver.seen == []


async def test_post_signs_the_stored_body_and_a_2xx_delivers(receiver: Receiver) -> None:
    attempt = await post_once(spec(url=receiver.url, allow_private=True), "msg_y")
    assert attempt.delivered
    assert attempt.status == 204
    [(headers, body)] = receiver.seen
    assert headers["webhook-id"] == "msg_y"
    assert headers["Content-Type"] == "application/json"
    assert body == BODY.encode()
    verify(KEY, headers, body)  # the signature covers the bytes that arrived

"""What crosses the sandbox tunnel, and the connection parameters guacd gets."""

import pytest

from jupyterhub_spaces.sandbox.rules import (
    PROTOCOL_VERSION,
    STATUS_CLIENT_FORBIDDEN,
    SandboxRules,
    StreamFilter,
    VncTarget,
    clamp_size,
    connect_values,
    guacd_version,
    locked_parameters,
    size_from_query,
)

BROWSER_CASES = [
    # (instruction, forwarded)
    (("mouse", "10", "20", "1"), True),
    (("key", "65", "1"), True),
    (("touch", "0", "10", "10", "5", "5", "0", "1", "1"), True),
    (("sync", "1700000000"), True),
    (("nop",), True),
    (("disconnect",), True),
    (("size", "1024", "768"), True),
    # data into or out of the desktop
    (("clipboard", "0", "text/plain"), False),
    (("blob", "0", "c2VjcmV0"), False),
    (("end", "0"), False),
    (("file", "0", "application/octet-stream", "data.csv"), False),
    (("pipe", "0", "text/plain", "x"), False),
    (("put", "0", "1", "text/plain", "/x"), False),
    (("get", "0", "/"), False),
    (("argv", "0", "text/plain", "disable-copy"), False),
    (("audio", "0", "audio/L16"), False),
    # handshake and session hijacking
    (("select", "$abc"), False),
    (("connect", "VERSION_1_5_0", "evil.example"), False),
    (("nest", "0", "9.clipboard,1.0;"), False),
    # malformed input instructions
    (("mouse", "10", "x", "1"), False),
    (("key", "🙂", "1"), False),
    (("sync",), False),
    (("nop", "extra"), False),
    (("ack", "1", "OK", "0"), False),  # not a display stream guacd opened
]


@pytest.mark.parametrize("elements, forwarded", BROWSER_CASES)
def test_browser_instructions(elements, forwarded):
    verdict = StreamFilter().from_browser(elements)
    assert verdict.forward is forwarded
    assert verdict.reply == ()


def test_browser_ack_passes_only_for_display_streams():
    f = StreamFilter()
    f.from_guacd(("img", "3", "14", "0", "image/png", "0", "0"))
    assert f.from_browser(("ack", "3", "OK", "0")).forward
    assert not f.from_browser(("ack", "4", "OK", "0")).forward
    f.from_guacd(("clipboard", "4", "text/plain"))
    assert not f.from_browser(("ack", "4", "OK", "0")).forward


@pytest.mark.parametrize(
    "args, expected",
    [
        (("1024", "768"), None),
        (("100000", "768"), ("size", "3840", "768")),
        (("10", "10"), ("size", "320", "240")),
        (("1024", "768", "96"), ("size", "1024", "768")),
    ],
)
def test_browser_resize_is_clamped(args, expected):
    verdict = StreamFilter().from_browser(("size", *args))
    assert verdict.forward
    assert verdict.replace == expected


GUACD_CASES = [
    (("size", "0", "1024", "768"), True),
    (("rect", "0", "0", "0", "10", "10"), True),
    (("cfill", "14", "0", "255", "0", "0", "255"), True),
    (("sync", "123"), True),
    (("error", "Aborted", "519"), True),
    (("name", "desktop"), True),
    (("ready", "$4f2c-connection-id"), False),
    (("required", "password"), False),
    (("filesystem", "0", "Shared Drive"), False),
    (("body", "0", "1", "application/json", "/"), False),
    (("undefine", "0"), False),
    (("nest", "0", "3.nop;"), False),
    (("ack", "0", "OK", "0"), False),
    (("something-new", "1"), False),
]


@pytest.mark.parametrize("elements, forwarded", GUACD_CASES)
def test_guacd_instructions(elements, forwarded):
    verdict = StreamFilter().from_guacd(elements)
    assert verdict.forward is forwarded
    assert verdict.reply == ()


@pytest.mark.parametrize(
    "opening",
    [
        ("clipboard", "5", "text/plain"),
        ("file", "5", "text/csv", "assets.csv"),
        ("pipe", "5", "application/octet-stream", "out"),
        ("audio", "5", "audio/L16;rate=44100,channels=2"),
        ("video", "5", "1", "video/webm"),
        ("argv", "5", "text/plain", "password"),
    ],
)
def test_guacd_data_streams_are_refused_with_their_blobs(opening):
    f = StreamFilter()
    verdict = f.from_guacd(opening)
    assert not verdict.forward
    # guacd learns at once that nobody will read the stream
    assert verdict.reply == (("ack", "5", "Not allowed in a sandbox", str(STATUS_CLIENT_FORBIDDEN)),)
    assert not f.from_guacd(("blob", "5", "c2VjcmV0IGRhdGE=")).forward
    assert not f.from_guacd(("end", "5")).forward
    # the index may be reused for an image afterwards
    assert f.from_guacd(("img", "5", "14", "0", "image/png", "0", "0")).forward
    assert f.from_guacd(("blob", "5", "iVBORw0=")).forward
    assert f.from_guacd(("end", "5")).forward
    assert not f.from_guacd(("blob", "5", "iVBORw0=")).forward


def test_blob_of_unknown_stream_dropped():
    assert not StreamFilter().from_guacd(("blob", "9", "AAAA")).forward


TARGET = VncTarget("127.0.0.1", 5901, "s3cret")


def test_locked_parameters_default():
    params = locked_parameters(TARGET, SandboxRules())
    assert params["hostname"] == "127.0.0.1"
    assert params["port"] == "5901"
    assert params["password"] == "s3cret"
    assert params["disable-copy"] == "true"
    assert params["disable-paste"] == "true"
    assert params["enable-sftp"] == "false"
    assert params["enable-audio"] == "false"
    assert params["enable-drive"] == "false"
    assert params["enable-printing"] == "false"
    assert "recording-path" not in params


def test_paste_is_a_site_setting_copy_never_is():
    params = locked_parameters(TARGET, SandboxRules(allow_paste=True))
    assert params["disable-paste"] == "false"
    assert params["disable-copy"] == "true"


def test_recording_for_audit():
    params = locked_parameters(TARGET, SandboxRules(recording_path="/audit/rec", recording_name="alice-s1"))
    assert params["recording-path"] == "/audit/rec"
    assert params["recording-name"] == "alice-s1"
    assert params["create-recording-path"] == "true"


def test_connect_values_follow_guacd_args_order():
    args = ("VERSION_1_5_0", "hostname", "port", "disable-copy", "sftp-hostname", "enable-sftp", "password")
    params = locked_parameters(TARGET, SandboxRules())
    assert connect_values(args, params) == [
        PROTOCOL_VERSION, "127.0.0.1", "5901", "true", "", "false", "s3cret",
    ]


@pytest.mark.parametrize(
    "args, version",
    [(("VERSION_1_5_0", "hostname"), (1, 5, 0)), (("VERSION_1_1_0",), (1, 1, 0)), (("hostname",), (1, 0, 0)), ((), (1, 0, 0))],
)
def test_guacd_version(args, version):
    assert guacd_version(args) == version


@pytest.mark.parametrize(
    "query, size",
    [
        ({}, (1280, 800, 96)),
        ({"width": ["1920"], "height": ["1080"], "dpi": ["120"]}, (1920, 1080, 120)),
        ({"width": ["99999"], "height": ["99999"]}, (3840, 2160, 96)),
        ({"width": ["1"], "height": ["-5"], "dpi": ["1"]}, (320, 800, 48)),
        ({"width": ["1e9"], "height": ["0x400"], "dpi": ["९६"]}, (1280, 800, 96)),
        ({"width": ["1024"], "hostname": ["evil"], "disable-copy": ["false"]}, (1024, 800, 96)),
    ],
)
def test_size_from_query(query, size):
    assert size_from_query(query) == size


def test_clamp_size_custom_limits():
    assert clamp_size("5000", "5000", "96", 1920, 1200) == (1920, 1200, 96)

"""The guacd -> browser relay's fast path (``Parser.feed_ascii`` behind
``relay_from_guacd``) against the instruction-by-instruction parser: the same
instructions judged, the same bytes forwarded, the same errors, however the stream
is cut into reads."""

import pytest

from jupyterhub_spaces.sandbox.protocol import Parser, ProtocolError, encode, parse_all
from jupyterhub_spaces.sandbox.rules import StreamFilter
from jupyterhub_spaces.sandbox.tunnel import for_browser, relay_from_guacd

SECRET = "c2VjcmV0IHRhYmxlIHJvd3M="

#: a display stream, a clipboard stream guacd opens in the middle of it, and
#: drawing after; every element kind the relay meets
STREAM = (
    encode("img", 1, 14, 0, "image/png", 0, 0)
    + encode("blob", 1, "iVBORw0KGgo" * 30)
    + encode("clipboard", 2, "text/plain")
    + encode("blob", 2, SECRET)
    + encode("blob", 1, "AAAA")
    + encode("end", 2)
    + encode("end", 1)
    + encode("file", 3, "text/csv", "table.csv")
    + encode("blob", 3, SECRET)
    + encode("rect", 0, 0, 0, 10, 10)
    + encode("sync", 1700000000)
    + encode("nop")
    + encode("ready", "$connection-id")
)


class Judge:
    """The tunnel's judge: the real filter, recording what it was asked and the
    replies it would send back to guacd."""

    def __init__(self):
        self.filter = StreamFilter()
        self.asked = []
        self.replies = []

    def __call__(self, opcode, first):
        self.asked.append((opcode, first))
        verdict = self.filter.from_guacd_head(opcode, first)
        self.replies.extend(verdict.reply)
        return verdict.forward


def expected(wire: str):
    """Instruction by instruction with the general parser and the element form of
    the rule: what must reach the browser and what the filter must be asked."""
    judge = Judge()
    out = for_browser(parse_all(wire), judge)
    return (out.decode() if isinstance(out, bytes) else out), judge


def relay(pieces, judge=None):
    judge = judge or Judge()
    parser = Parser()
    out = []
    for piece in pieces:
        got = relay_from_guacd(parser, piece, judge)
        out.append(got.decode() if isinstance(got, bytes) else got)
    return "".join(out), judge, parser


def test_whole_stream_in_one_read():
    want, want_judge = expected(STREAM)
    got, judge, parser = relay([STREAM.encode()])
    assert got == want
    assert judge.asked == want_judge.asked
    assert parser.pending == 0
    assert SECRET not in got and "clipboard" not in got and "ready" not in got and "table.csv" not in got
    assert [reply[:2] for reply in judge.replies] == [("ack", "2"), ("ack", "3")]


def test_every_split_into_two_reads_gives_the_same_result():
    data = STREAM.encode()
    want, want_judge = expected(STREAM)
    for cut in range(1, len(data)):
        got, judge, parser = relay([data[:cut], data[cut:]])
        assert got == want, cut
        assert judge.asked == want_judge.asked, cut
        assert parser.pending == 0, cut


def test_every_split_into_three_reads_gives_the_same_result():
    data = STREAM.encode()
    want, _ = expected(STREAM)
    for cut in range(1, len(data), 3):
        for second in range(cut, len(data), 29):
            got, _, parser = relay([data[:cut], data[cut:second], data[second:]])
            assert got == want, (cut, second)
            assert parser.pending == 0


def test_one_byte_at_a_time():
    want, want_judge = expected(STREAM)
    got, judge, _ = relay([bytes([b]) for b in STREAM.encode()])
    assert got == want
    assert judge.asked == want_judge.asked


def test_only_whole_instructions_are_judged_and_forwarded():
    data = encode("rect", 0, 0, 0, 10, 10).encode()
    parser, judge = Parser(), Judge()
    assert relay_from_guacd(parser, data[:-1], judge) == b""
    assert judge.asked == []
    assert relay_from_guacd(parser, data[-1:], judge) == data


def test_forbidden_opcode_after_allowed_ones_in_one_read():
    """A clipboard stream hidden behind drawing in the same read is cut, and its blob
    with it, although every other instruction of the read passes in one piece."""
    wire = (
        encode("img", 4, 14, 0, "image/png", 0, 0)
        + encode("blob", 4, "AAAA")
        + encode("rect", 0, 0, 0, 1, 1)
        + encode("clipboard", 5, "text/plain")
        + encode("blob", 5, SECRET)
        + encode("end", 5)
        + encode("cfill", 14, 0, 0, 0, 0, 255)
    )
    got, judge, _ = relay([wire.encode()])
    assert got == (
        encode("img", 4, 14, 0, "image/png", 0, 0) + encode("blob", 4, "AAAA") + encode("rect", 0, 0, 0, 1, 1)
        + encode("cfill", 14, 0, 0, 0, 0, 255)
    )
    assert judge.replies == [("ack", "5", "Not allowed in a sandbox", "771")]


def test_instructions_inside_a_value_are_data_not_instructions():
    """A value may hold text that looks like instructions (a window title typed on
    the desktop): it is judged as part of its own instruction, whatever it says."""
    fake = encode("clipboard", 6, "text/plain") + encode("blob", 6, SECRET)
    wire = encode("name", fake) + encode("sync", 1)
    got, judge, _ = relay([wire.encode()])
    assert judge.asked == [("name", fake), ("sync", "1")]
    assert got == wire  # the browser reads the same lengths: for it too a name


@pytest.mark.parametrize(
    "wire",
    [
        # the length claims more than the value: the terminator lands in the middle
        # of the next instruction
        "4.blob,1.1,6.AAAA;4.sync,1.1;",
        # the length claims less: what follows the value is not ',' or ';'
        "4.blob,1.1,2.AAAA;",
        # a longer length could swallow a forbidden instruction into an allowed one;
        # the value's end must still be a terminator
        "4.sync,23.1;9.clipboard,1.2,4.text;",
    ],
)
def test_length_prefix_lying_about_the_value_is_refused(wire):
    with pytest.raises(ProtocolError, match="expected ',' or ';'"):
        relay([wire.encode()])


@pytest.mark.parametrize(
    "wire, message",
    [
        ("4.size,x.1;", "malformed element length"),
        ("-1.a;", "malformed element length"),
        ("+1.a;", "malformed element length"),  # int() would take it
        (" 1.a;", "malformed element length"),  # so would it this
        ("1_0.aaaaaaaaaa;", "malformed element length"),  # and this
        ("4.size,.1;", "malformed element length"),
        ("12345678901234567890.a;", "malformed element length"),
        ("3.nop:", "expected ',' or ';'"),
        ("4.nop;3.nop;", "expected ',' or ';'"),
    ],
)
def test_malformed_instructions_are_refused_like_the_general_parser(wire, message):
    with pytest.raises(ProtocolError, match=message):
        parse_all(wire)
    with pytest.raises(ProtocolError, match=message):
        relay([wire.encode()])
    # also when it arrives behind a valid instruction in the same read
    with pytest.raises(ProtocolError, match=message):
        relay([(encode("sync", 1) + wire).encode()])


def test_limits_are_the_general_parsers():
    parser = Parser(max_length=64)
    with pytest.raises(ProtocolError, match="longer than the limit of 64"):
        parser.feed_ascii(b"4.blob,1.1,9999999.", Judge())
    parser = Parser(max_length=64)
    with pytest.raises(ProtocolError, match="longer than the limit"):
        for _ in range(20):
            parser.feed_ascii(b"1.a,", Judge())
    parser = Parser(max_elements=5)
    with pytest.raises(ProtocolError, match="more than 5 elements"):
        parser.feed_ascii(encode("args", *["a"] * 10).encode(), Judge())
    wire = encode("log", "x" * 50)
    assert Parser(max_length=60).feed_ascii(wire.encode(), Judge()) == wire.encode()


def test_lengths_count_code_points_across_the_switch_to_and_from_text():
    """A read that ends inside a non-ASCII instruction: the ASCII start goes through
    the fast path, the rest through the text parser, lengths in code points; what
    reaches the browser is recounted in UTF-16 units."""
    wire = (
        encode("sync", 1) + encode("name", "bob 🙂 データ") + encode("rect", 0, 0, 0, 1, 1)
        + encode("clipboard", 7, "text/plain") + encode("blob", 7, "Ünïcødé") + encode("sync", 2)
    )
    want = encode("sync", 1) + "4.name,10.bob 🙂 データ;" + encode("rect", 0, 0, 0, 1, 1) + encode("sync", 2)
    data = wire.encode()
    for cut in range(1, len(data)):
        got, judge, parser = relay([data[:cut], data[cut:]])
        assert got == want, cut
        assert parser.pending == 0
        assert ("name", "bob 🙂 データ") in judge.asked


def test_a_non_ascii_length_digit_is_refused():
    # Arabic-Indic digit three: not ASCII, so the text parser judges it, and refuses
    with pytest.raises(ProtocolError, match="malformed element length"):
        relay([encode("sync", 1).encode(), "٣.abc;".encode()])

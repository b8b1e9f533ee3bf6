"""The Guacamole wire format: lengths in code points, partial reads, limits."""

import pytest

from jupyterhub_spaces.sandbox.protocol import (
    Instruction,
    Parser,
    ProtocolError,
    encode,
    encode_utf16,
    for_utf16_client,
    joined_wire,
    parse_all,
)

ENCODE_CASES = [
    (("nop",), "3.nop;"),
    (("", "ping", 1700000000000), "0.,4.ping,13.1700000000000;"),
    (("size", 0, 1024, 768), "4.size,1.0,4.1024,3.768;"),
    (("name", "Données"), "4.name,7.Données;"),
    (("name", "日本語のデスクトップ"), "4.name,10.日本語のデスクトップ;"),
    # one emoji is one code point although it is 4 UTF-8 bytes and 2 UTF-16 units
    (("name", "🙂"), "4.name,1.🙂;"),
    (("name", "a🙂b👩‍💻"), "4.name,6.a🙂b👩‍💻;"),
    (("log", "x,y;z.1"), "3.log,7.x,y;z.1;"),
    (("args", ""), "4.args,0.;"),
]


@pytest.mark.parametrize("elements, wire", ENCODE_CASES)
def test_encode_counts_code_points(elements, wire):
    assert encode(*elements) == wire


@pytest.mark.parametrize("elements, wire", ENCODE_CASES)
def test_parse_round_trip(elements, wire):
    [instr] = parse_all(wire.encode())
    assert instr.elements == tuple(str(e) for e in elements)
    assert instr.raw == wire


@pytest.mark.parametrize("elements, wire", ENCODE_CASES)
def test_every_byte_split_gives_the_same_instructions(elements, wire):
    """A read may end anywhere, also inside a multi-byte UTF-8 character."""
    data = (wire + "4.sync,3.123;").encode()
    expected = parse_all(data)
    for cut in range(1, len(data)):
        parser = Parser()
        got = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert got == expected, cut
        assert parser.pending == 0


def test_one_byte_at_a_time_through_emoji_and_cjk():
    wire = encode("name", "漢字🙂") + encode("error", "失敗 ❌", 519)
    parser = Parser()
    got = []
    for b in wire.encode():
        got += parser.feed(bytes([b]))
    assert [i.elements for i in got] == [("name", "漢字🙂"), ("error", "失敗 ❌", "519")]
    assert "".join(i.raw for i in got) == wire


def test_split_inside_a_four_byte_character_returns_nothing_yet():
    data = encode("name", "🙂").encode()
    emoji_start = data.index("🙂".encode())
    parser = Parser()
    assert parser.feed(data[: emoji_start + 2]) == []
    [instr] = parser.feed(data[emoji_start + 2:])
    assert instr.args == ("🙂",)


def test_byte_count_lengths_are_rejected():
    # "🙂" written with its UTF-8 byte length (4) instead of its code point count (1)
    with pytest.raises(ProtocolError, match="followed by"):
        parse_all("4.name,4.🙂;4.sync,1.0;")


MALFORMED = [
    ("4.size,x.1;", "malformed element length"),
    ("-1.a;", "malformed element length"),
    ("4.size,.1;", "malformed element length"),
    ("٣.abc;", "malformed element length"),  # Arabic-Indic digit three
    ("4.sizeX1.0;", "expected ',' or ';'"),
    ("3.nop:", "expected ',' or ';'"),
    ("12345678901234567890.a;", "malformed element length"),
    # a length longer than its value swallows the next instruction's start
    ("4.nop;3.nop;", "expected ',' or ';'"),
]


@pytest.mark.parametrize("wire, message", MALFORMED)
def test_malformed_instructions_are_rejected(wire, message):
    with pytest.raises(ProtocolError, match=message):
        parse_all(wire)


def test_instruction_without_terminator_is_incomplete():
    with pytest.raises(ProtocolError, match="incomplete"):
        parse_all("4.size,1.0")
    assert Parser().feed(b"4.size,1.0") == []


def test_invalid_utf8_is_rejected():
    with pytest.raises(ProtocolError, match="UTF-8"):
        Parser().feed(b"4.name,1.\xff;")


@pytest.mark.parametrize(
    "wire",
    [
        "4.blob,1.1,100." + "A" * 100 + ";",  # announced and present
        "4.blob,1.1,100." + "A" * 10,  # announced, not yet arrived
        "4.blob,1.1,9999999.",  # only the announcement
    ],
)
def test_oversized_instruction_is_rejected_early(wire):
    parser = Parser(max_length=64)
    with pytest.raises(ProtocolError, match="longer than the limit of 64"):
        parser.feed_text(wire)


def test_oversized_across_reads_is_rejected():
    parser = Parser(max_length=64)
    with pytest.raises(ProtocolError, match="longer than the limit"):
        for _ in range(20):
            parser.feed_text("1.a,")


def test_instruction_at_the_limit_is_accepted():
    wire = encode("log", "x" * 50)
    assert len(wire) == 60
    assert Parser(max_length=60).feed_text(wire)[0].args == ("x" * 50,)


def test_too_many_elements_rejected():
    wire = encode("args", *["a"] * 10)
    with pytest.raises(ProtocolError, match="more than 5 elements"):
        Parser(max_elements=5).feed_text(wire)


def test_several_instructions_in_one_read_keep_raw_text():
    wire = encode("size", 0, 10, 10) + encode("rect", 0, 0, 0, 10, 10) + encode("sync", 5)
    got = parse_all(wire)
    assert [i.opcode for i in got] == ["size", "rect", "sync"]
    assert "".join(i.raw for i in got) == wire


@pytest.mark.parametrize(
    "elements, wire",
    [
        (("name", "abc"), "4.name,3.abc;"),
        (("name", "日本"), "4.name,2.日本;"),  # BMP: same as code points
        (("name", "🙂"), "4.name,2.🙂;"),  # surrogate pair: 2 units
        (("name", "a🙂👍"), "4.name,5.a🙂👍;"),
    ],
)
def test_utf16_encoding_for_the_javascript_client(elements, wire):
    assert encode_utf16(*elements) == wire
    instr = Instruction(elements, encode(*elements))
    assert for_utf16_client(instr) == wire


def test_utf16_client_text_reuses_raw_when_possible():
    instr = parse_all(encode("name", "Données 日本"))[0]
    assert for_utf16_client(instr) is instr.raw


def test_ascii_input_is_parsed_as_bytes_and_forwarded_unchanged():
    wire = encode("img", 1, 14, 0, "image/png", 0, 0) + encode("blob", 1, "iVBORw0KGgo=") + encode("end", 1)
    parser = Parser()
    got = parser.feed(wire[:20].encode()) + parser.feed(wire[20:].encode())
    assert [i.opcode for i in got] == ["img", "blob", "end"]
    assert all(i.is_ascii_bytes for i in got)
    assert got[1].head(2) == ("blob", "1")
    assert got[1].args == ("1", "iVBORw0KGgo=")
    assert joined_wire(got) == wire.encode()
    # a subset keeps only what was chosen, in order
    assert joined_wire([got[0], got[2]]) == (got[0].raw + got[2].raw).encode()


def test_switching_between_ascii_and_multibyte_reads():
    wire = encode("name", "ab") + encode("name", "Ünïcødé 🙂") + encode("sync", 1) + encode("name", "ok")
    data = wire.encode()
    expected = [("name", "ab"), ("name", "Ünïcødé 🙂"), ("sync", "1"), ("name", "ok")]
    for cut in range(1, len(data)):
        for second in range(cut + 1, len(data), 7):
            parser = Parser()
            got = parser.feed(data[:cut]) + parser.feed(data[cut:second]) + parser.feed(data[second:])
            assert [i.elements for i in got] == expected, (cut, second)
            assert "".join(i.raw for i in got) == wire
            joined = joined_wire(got)
            assert (joined.decode() if isinstance(joined, bytes) else joined) == wire


@pytest.mark.parametrize("wire", [encode("blob", 12, "AAAA"), encode("sync"), encode("name", "Ü"), encode("end", 3)])
def test_opcode_and_first_matches_elements(wire):
    [instr] = Parser().feed(wire.encode())
    assert instr.opcode_and_first() == instr.elements[:2]
    assert instr.head(2) == instr.elements[:2]

"""Rebuild the bad-input corpus: python tests/source/make_corpus.py (then review expected.json)."""

import os

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
H = "url,left_col,top_row,right_col,bottom_row,pos_concepts,neg_concepts,metadata\n"
G = "https://images.example.com/1.jpg,0.1,0.2,0.5,0.6,cat,,\n"
G2 = 'https://images.example.com/2.jpg,,,,,dog|cat,,"{""k"": 1}"\n'


def w(name: str, data: str | bytes) -> None:
    if isinstance(data, bytes):
        with open(name, "wb") as fb:
            fb.write(data)
    else:
        with open(name, "w", newline="", encoding="utf-8") as ft:
            ft.write(data)


def bad(name: str, row: str) -> None:
    w(name, H + G + row + "\n" + G2)


w(
    "missing_url_column.csv",
    "link,left_col,top_row,right_col,bottom_row\nhttps://a.example/1.jpg,0.1,0.1,0.2,0.2\n",
)
w("missing_box_column.csv", "url,left_col,top_row,right_col\nhttps://a.example/1.jpg,0.1,0.1,0.2\n")
w(
    "duplicate_header.csv",
    "url,left_col,top_row,right_col,bottom_row,left_col\n"
    + "https://a.example/1.jpg,0.1,0.1,0.2,0.2,0.1\n",
)
w(
    "url_and_file.csv",
    "url,file,left_col,top_row,right_col,bottom_row\nhttps://a.example/1.jpg,images/a.jpg,,,,\n",
)
w("empty.csv", "")
w("header_only.csv", H)
w("bom.csv", b"\xef\xbb\xbf" + (H + G + G2).encode())
w(
    "crlf.csv",
    (H + G + "https://images.example.com/3.jpg,0.1,0.2,0.1,0.6,cat,,\n" + G2).replace("\n", "\r\n"),
)
w(
    "quoted_newlines.csv",
    H
    + 'https://images.example.com/1.jpg,0.1,0.2,0.5,0.6,cat,,"{""note"": ""two\nlines\nhere""}"\n'
    + "https://images.example.com/3.jpg,0.1,0.2,0.5,1.6,cat,,\n"
    + G2,
)
w(
    "invalid_utf8.csv",
    (H + G).encode()
    + b"https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,caf\xe9,,\n"
    + G2.encode(),
)
w(
    "nul_bytes.csv",
    (H + G).encode()
    + b"https://images.example.com/3\x00.jpg,0.1,0.2,0.5,0.6,cat,,\n"
    + G2.encode(),
)
w(
    "big_field.csv",
    "url,left_col,top_row,right_col,bottom_row,notes\n"
    + 'https://images.example.com/1.jpg,0.1,0.2,0.5,0.6,"'
    + ("x" * 1_100_000)
    + '"\n'
    + "https://images.example.com/2.jpg,0.1,0.2,0.5,7,\n",
)
bad("box_nan.csv", "https://images.example.com/3.jpg,NaN,0.2,0.5,0.6,cat,,")
bad("box_inf.csv", "https://images.example.com/3.jpg,0.1,0.2,inf,0.6,cat,,")
bad("box_negative.csv", "https://images.example.com/3.jpg,0.1,-0.2,0.5,0.6,cat,,")
bad("box_above_one.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,1.01,cat,,")
bad("box_left_equals_right.csv", "https://images.example.com/3.jpg,0.4,0.2,0.4,0.6,cat,,")
bad("box_left_above_right.csv", "https://images.example.com/3.jpg,0.5,0.2,0.4,0.6,cat,,")
bad("box_top_equals_bottom.csv", "https://images.example.com/3.jpg,0.1,0.6,0.5,0.6,cat,,")
bad("box_text.csv", "https://images.example.com/3.jpg,0.1,0.2,half,0.6,cat,,")
bad("box_incomplete.csv", "https://images.example.com/3.jpg,0.1,,0.5,0.6,cat,,")
bad("metadata_list.csv", 'https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,"[1, 2]"')
bad("metadata_invalid_json.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,{'a': 1}")
bad("metadata_nan.csv", 'https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,"{""a"": NaN}"')
bad(
    "metadata_huge.csv",
    'https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,"{""blob"": ""' + "y" * 70_000 + '""}"',
)
bad(
    "metadata_deep.csv",
    'https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,"{""a"": '
    + "[" * 30_000
    + "]" * 30_000
    + '}"',
)
bad("concept_space.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat|red car,,")
bad("concept_unicode.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,caf\u00e9,")
bad("concept_zero_width.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,c\u200bat,,")
bad("concept_too_long.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6," + "c" * 200 + ",,")
bad(
    "concepts_thousands.csv",
    "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,"
    + "|".join(f"c{i}" for i in range(5000))
    + ",,",
)
bad("concept_pos_and_neg.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat|dog,bird|dog,")
bad("url_ftp.csv", "ftp://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,")
bad("url_javascript.csv", "javascript:alert(1),0.1,0.2,0.5,0.6,cat,,")
bad("url_no_scheme.csv", "images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,")
bad("url_empty.csv", ",0.1,0.2,0.5,0.6,cat,,")
bad("url_space.csv", "https://images.example.com/a b.jpg,0.1,0.2,0.5,0.6,cat,,")
bad("wrong_cell_count.csv", "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6")
w(
    "unclosed_quote.csv",
    H + G + G2 + 'https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,"cat,,\nmore,text\n',
)
w("no_trailing_newline.csv", H + G + G2.rstrip("\n"))
w(
    "blank_lines.csv",
    "\n" + H + G + "\n\n" + "https://images.example.com/3.jpg,0.1,0.2,0.5,2,cat,,\n" + G2,
)
w("utf16.csv", (H + G).encode("utf-16"))
w("binary_png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256)))
w(
    "input_id_column.csv",
    H.rstrip("\n")
    + ",input_id\n"
    + G.rstrip("\n")
    + ",my-image_1\n"
    + "https://images.example.com/3.jpg,0.1,0.2,0.5,0.6,cat,,,my image\n",
)
FH = "file,left_col,top_row,right_col,bottom_row,pos_concepts\n"
FG = "images/a.jpg,0.1,0.2,0.5,0.6,cat\n"
w("file_missing.csv", FH + FG + "images/nope.jpg,0.1,0.2,0.5,0.6,cat\n")
w("file_folder.csv", FH + FG + "images/folder,0.1,0.2,0.5,0.6,cat\n")
w("file_outside.csv", FH + FG + "../test_corpus.py,0.1,0.2,0.5,0.6,cat\n")
w("file_absolute.csv", FH + FG + "/etc/hostname,0.1,0.2,0.5,0.6,cat\n")
w("images/a.jpg", b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
w("images/folder/.keep", b"")

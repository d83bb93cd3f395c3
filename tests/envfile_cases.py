"""Environment files and what systemd's EnvironmentFile= reads from them.

Shared by the unit tests (our parser must read exactly this) and the integration test that
hands the same files to a guest's real systemd 252 (which must read exactly this too).
"""

from __future__ import annotations

# (file text, what systemd sets)
READS: list[tuple[str, dict[str, str]]] = [
    ("K=plain\n", {"K": "plain"}),
    ("K=  blanks around  \n", {"K": "blanks around"}),
    ('K="  blanks kept inside quotes  "\n', {"K": "  blanks kept inside quotes  "}),
    ("K=' single $HOME \\n `x` '\n", {"K": " single $HOME \\n `x` "}),
    ('K="a\\"b\\\\c\\$d\\`e"\n', {"K": 'a"b\\c$d`e'}),
    ('K="kept \\q backslash"\n', {"K": "kept \\q backslash"}),
    ("K=con\\\ntinued\n", {"K": "continued"}),
    ('K="two\nlines"\n', {"K": "two\nlines"}),
    ("K='two\nlines'\n", {"K": "two\nlines"}),
    ("K=a#b;c\n", {"K": "a#b;c"}),
    ("  # an indented comment\n; a semicolon comment\nK=v\n", {"K": "v"}),
    ("A=1\r\nB=\"two words\"\r\nC='x'\r\n", {"A": "1", "B": "two words", "C": "x"}),
    ("A=1\rB=2\r", {"A": "1", "B": "2"}),
    ('K=abc"def"\n', {"K": 'abc"def"'}),
    ("K=\n", {"K": ""}),
    ('K=""\n', {"K": ""}),
    ("K = spaced key\n", {"K": "spaced key"}),
    ('K="a"   \n', {"K": "a"}),
    ("K=été €uro 😀 密码\n", {"K": "été €uro 😀 密码"}),
    ("K=tab\tinside\n", {"K": "tab\tinside"}),
    ("K=no final newline", {"K": "no final newline"}),
    ('K="ends in a backslash\\\\"\n', {"K": "ends in a backslash\\"}),
    ('K="Pa$$w0rd!#;=:@"\n', {"K": "Pa$$w0rd!#;=:@"}),
    ("K='C:\\users\\x'\n", {"K": "C:\\users\\x"}),
    ('K="C:\\users\\x"\n', {"K": "C:\\users\\x"}),
    ("\n\n   \nK=v\n\n", {"K": "v"}),
    ("# a comment with a \\ inside\nK=v\n", {"K": "v"}),
    ("K='quote\"inside'\n", {"K": 'quote"inside'}),
    ('K="it\'s"\n', {"K": "it's"}),
]

# (file text, the 1-based line a refusal names, words it must contain, what systemd reads)
REFUSED: list[tuple[str, int, str, dict[str, str]]] = [
    ("\ufeffA=1\nB=2\n", 1, "byte-order mark", {"B": "2"}),
    ('A=1\nK="pw" # my password\n', 2, "after the closing quote", {"A": "1", "K": "pw# my password"}),
    ("K='a'b\n", 1, "after the closing quote", {"K": "ab"}),
    ("# note \\\nA=1\nB=2\n", 1, "backslash", {"B": "2"}),
    ("K=Ab\\cd-9\n", 1, "unquoted backslash", {"K": "Abcd-9"}),
    ("K=escaped\\ blank\n", 1, "unquoted backslash", {"K": "escaped blank"}),
    ("A=1\nnot an assignment\nB=2\n", 2, "expected KEY=VALUE", {"A": "1", "B": "2"}),
    ("A=1\nexport B=2\n", 2, "remove 'export'", {"A": "1"}),
    ("A=1\n1B=2\n", 2, "not a valid variable name", {"A": "1"}),
    ("A=1\nA=2\n", 2, "set twice", {"A": "2"}),
    ('A=1\nK="never closed\nB=2\n', 2, "never closed", {"A": "1", "K": "never closed\nB=2\n"}),
    ("K='never closed\n", 1, "never closed", {"K": "never closed\n"}),
]

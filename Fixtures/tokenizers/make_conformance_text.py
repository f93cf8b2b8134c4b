#!/usr/bin/env python3
"""Writes Fixtures/tokenizers/conformance.txt, the tokenizer conformance text.

The text is the committed artifact; this script only documents how it was assembled
(escapes make the invisible code points reviewable). Plain python3, no packages:

    python3 Fixtures/tokenizers/make_conformance_text.py

then rerun make_tokenizer_reference.py, whose reference ids depend on the text.
"""
import itertools, random
L = []
add = L.append
add("# StreamLab tokenizer conformance text. Every line is encoded alone and the whole file at once.")
# --- plain prose
for s in [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles",
    "And by opposing end them. To die—to sleep,",
    "Now is the winter of our discontent / Made glorious summer by this sun of York;",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "Hello world",
    "Hello, World! Hello World? hello-world hello_world helloWorld HelloWorld",
    "A",
    "a",
    "I",
    "",
    "Tokenization is the first step; interpretability starts from text.",
    "<|endoftext|>",
    "The end.<|endoftext|>The beginning.",
    "<|endoftext|><|endoftext|>",
    " <|endoftext|> ",
    "text before <|endoftext|>text after",
    "<|endoftext",
    "|endoftext|>",
    "<|endoftext|!>",
    "<s> Hello </s>",
    "<s>Hello</s>",
    "<unk> is not unknown here",
    "Hello<s>world",
    "a<s>",
    "<s>",
    "</s></s>",
    "<0x41> is literal text, not a byte token",
    "fill the <mask> here",
    "a  <mask>b and <mask><mask>",
    "<mask>",
    "▁ is a lower one eighth block, ▁▁ twice, and ▁word",
]: add(s)
# --- whitespace
for s in [
    " leading space",
    "  two leading spaces",
    "   three leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "   ",
    " ",
    "\t",
    "\tleading tab",
    "trailing tab\t",
    "tab\tseparated\tvalues\t1\t2\t3",
    "mixed \t whitespace\t \tbetween",
    "double  space  between  words",
    "many          spaces          here",
    "space before punctuation , ; : ! ?",
    "ends with CR\r",
    "CR\rin the middle",
    "\r",
    "vertical\x0btab and form\x0cfeed",
    "next\x85line (NEL U+0085)",
    "no\xa0break\xa0space and\xa0\xa0two",
    "en\u2002space em\u2003space thin\u2009space hair\u200aspace",
    "figure\u2007space narrow\u202fnbsp medium\u205fmath",
    "ideographic\u3000space\u3000\u3000twice",
    "line\u2028separator and paragraph\u2029separator",
    "ogham\u1680space mark",
    "mongolian\u180evowel separator (not whitespace)",
    "zero\u200bwidth space (not whitespace)",
    "word joiner\u2060here",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    " \t \t ",
    "  \u00a0 mixed",
    "\u00a0leading nbsp",
    "trailing nbsp\u00a0",
    "\u3000\u3000",
    "a \u00a0b",
    "a\u00a0 b",
    "a  \tb",
    "a\t  b",
    " 1 22  333   4444",
    "  !!  ??",
    "x" + " " * 40 + "y",
    " " * 25,
    "\t" * 6 + "indented",
]: add(s)
# --- contractions in several cases
for w in ["s", "t", "re", "ve", "m", "ll", "d"]:
    add(f"it'{w} IT'{w.upper()} It'{w.capitalize()} '{w} '{w.upper()} x'{w}y")
for s in [
    "don't DON'T Don't DoN'T don'T",
    "I'm I'M you're YOU'RE You'Re we've WE'VE she'll SHE'LL She'Ll he'd HE'D",
    "'tis 'Tis 'TIS o'clock rock 'n' roll",
    "''s '''s ''' '' ' x's' 's's 'll've",
    "it’s don’t I’m (curly apostrophes U+2019)",
    "it‘s ‘quoted’ “double” «guillemets» „low“",
    "'s",
    "'S",
    "'",
    " 's",
    "  's",
    "?'s",
    "John's book; JAMES'S car; the boys' toys; it's 5 o'clock",
    "can't won't shan't y'all ma'am ne'er-do-well",
    "'re're're 'd'd 'm'm",
    "x'\u00e9 '\u00e9t\u00e9 l'\u00e9t\u00e9 aujourd'hui",
    "long s: it'\u017f IT'\u017f '\u017ftate (case folding in (?i:'s))",
    "(hello) [world] {x}y !hello \u00bfqu\u00e9? ...and \"quoted\"",
    "ends with punctuation and CRLF!?\r",
]: add(s)
# --- numbers of many lengths
digits = "31415926535897932384626433832795028841971693993751"
for n in list(range(1, 21)) + [25, 32, 40, 50]:
    add(digits[:n])
for s in [
    "0 00 000 0000 00000",
    "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890",
    "3.14159 2.71828 -42 +7 1e10 6.022e23 0x1F 0b1010 1_000_000",
    "1,000,000 10.000,50 $1,234.56 €99 £5 ¥1000 50% 3/4",
    "abc123def 123abc abc123 a1b2c3 v1.2.3 x86_64 utf-8",
    "2024-01-31T23:59:59Z 12:30 +1 (555) 010-9999",
    " 42",
    "  42",
    "Arabic-Indic ٠١٢٣٤٥٦٧٨٩ Extended ۰۱۲۳۴۵۶۷۸۹",
    "Devanagari ०१२३४५६७८९ Bengali ০১২৩৪৫৬৭৮৯ Thai ๐๑๒๓๔๕๖๗๘๙",
    "fullwidth １２３４５ and ＡＢＣ ａｂｃ",
    "superscripts x² y³ z¹⁰ subscripts H₂O CO₂",
    "fractions ½ ⅓ ¾ ⅞ and ¼cup",
    "Roman numerals Ⅰ Ⅱ Ⅻ ⅰⅱⅲ ↂ and 〇",
    "circled ① ② ⑳ ㉑ and parenthesized ⑴ ⑵",
    "mathematical 𝟘𝟙𝟚 𝟎𝟏𝟐 𝐀𝐁𝐂 𝑎𝑏𝑐 𝔄𝔅",
    "Gothic 𐍁 𐍈 Aegean 𐄇𐄈 Counting rod 𝍠",
    "digits then letters 7eleven 4real 2day",
    "9" * 60,
]: add(s)
# --- punctuation runs
for s in [
    "!!!", "???", "?!?!", "...", "…", "—", "--", "---", "-", "((()))", "[[{{<<>>}}]]",
    "@#$%^&*", " !!!", "  !!!", "a,b,c", "a, b, c", "end.", "end...", "end!?",
    "https://example.com/path/to/page?query=1&other=two#fragment",
    "mailto:someone@example.org <someone@example.org>",
    "for (int i = 0; i < n; i++) { x[i] += y[i] * 2; }",
    "if x != nil && y >= 3 || !z { return -1 }",
    "{\"ids\": [1, 2, 3], \"tokens\": [\"a\", \"b\"]}",
    "**bold** __underline__ _it_ `code` ~~strike~~ # heading ## sub",
    "<html><body class=\"x\">Hi &amp; bye</body></html>",
    "C:\\Users\\name\\file.txt /usr/local/bin ~/.config",
    "#hashtag @mention $var %fmt ^caret &amp *star",
    "§ ¶ † ‡ • ‣ ′ ″ ‰ ‱ ※ ‽ ⁂",
    "→ ← ↑ ↓ ⇒ ⇔ ∀ ∃ ∈ ∉ ∑ ∏ √ ∞ ≈ ≠ ≤ ≥ ⊂ ⊃ ∧ ∨",
    "box ┌─┐│└┘ ╔═╗ blocks ░▒▓█",
    "=" * 40,
    "-" * 33 + "+" + "-" * 7,
    "*" * 17,
    ".,;:!?" * 8,
    "'\"'\"'\"",
    "a'b\"c`d",
    "(x)", "[y]", "{z}", "<w>",
]: add(s)
# --- accented Latin
for s in [
    "café naïve résumé coöperate façade jalapeño piñata",
    "Ångström Øresund Łódź Škoda Dvořák Ærø Œuvre",
    "Straße STRASSE ẞ Grüße Äpfel Öl Übel",
    "İstanbul ıstakoz Iğdır ŞEHİR",
    "Tiếng Việt có dấu: Nguyễn Thị Minh Khai",
    "Português: ação, coração, pães; Español: ¿Qué tal? ¡Olé!",
    "Ελληνικά in Latin: Ellēniká; Pinyin: Zhōngwén, nǚ, lǜ",
    "decomposed: cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "precomposed: café naïve résumé",
    "\u0301 leading combining acute",
    "stacked a\u0301\u0302\u0303\u0304\u0305 marks",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ text",
    "titlecase ǅ ǈ ǋ ǲ and ligatures ﬁ ﬂ ﬀ",
    "modifier letters ʰ ʲ ˀ ˤ ᵃ and ordinals ª º",
    "circled letters Ⓐ Ⓑ ⓐ (symbols, not letters)",
]: add(s)
# --- Greek
for s in [
    "Καλημέρα κόσμε! Γειά σου.",
    "ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν",
    "ΣΊΣΥΦΟΣ σίσυφος ς final sigma",
    "Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός",
    "α+β=γ; π≈3.14; Ω",
]: add(s)
# --- Cyrillic
for s in [
    "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "ЁЛКА ёлка Ёлка; Україна, Ґанок, їжак; Беларусь: ў",
    "Српски: Ђ Ј Љ Њ Ћ Џ; Македонски: Ѓ Ќ Ѕ",
    "смешанный text с English словами123",
    "Здравствуйте,мир!!!",
]: add(s)
# --- CJK and other scripts
for s in [
    "你好，世界！",
    "我能吞下玻璃而不伤身体。",
    "中文、日本語、한국어",
    "こんにちは世界。カタカナ ｶﾀｶﾅ ひらがな",
    "私はガラスを食べられます。それは私を傷つけません。",
    "안녕하세요 세계",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요",
    "decomposed hangul \u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "CJK extension B 𠀀𠀁𠀂 and 𪚥 𩸽",
    "CJK punctuation 「引用」『二重』【括弧】〈〉《》",
    "fullwidth punctuation ！？，。：；",
    "mixed 中文English混合123数字",
    "مرحبا بالعالم",
    "العربية: أَهْلًا وَسَهْلًا",
    "שָׁלוֹם עוֹלָם",
    "नमस्ते दुनिया",
    "हिन्दी में क्षत्रिय और श्री",
    "สวัสดีชาวโลก",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "தமிழ் வணக்கம்",
    "ქართული ენა",
    "Հայերեն լեզու",
    "አማርኛ ቋንቋ",
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",
    "བོད་ཡིག",
    "ᚠᛇᚻ᛫ᛒᛦᚦ runes",
    "ꦗꦮ Javanese and ᜊᜌ᜔ᜊᜌᜒᜈ᜔ Baybayin",
    "Cherokee ᏣᎳᎩ and Canadian syllabics ᐃᓄᒃᑎᑐᑦ",
    "Ethiopic numbers ፩፪፫ and Tamil ௧௨௩",
]: add(s)
# --- emoji
for s in [
    "😀",
    "😀😃😄",
    "I ❤️ NY",
    "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "family 👨‍👩‍👧‍👦 couple 👩‍❤️‍👨 kiss 👩‍❤️‍💋‍👩",
    "🏳️‍🌈 🏳️‍⚧️ 🏴‍☠️",
    "flags 🇺🇸🇫🇷🇯🇵 🇩🇪 and a lone 🇦",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁥󠁮󠁧󠁿 tag sequences",
    "keycaps 1️⃣ 2️⃣ #️⃣ *️⃣",
    "hi😀there",
    " 😀",
    "😀 ",
    "emoji with text: 🎉party🎉 time",
    "👩🏽‍💻 👨🏿‍🚀 🧑‍🤝‍🧑 🫶🏼",
    "☺ ☺️ ✌ ✌️ ✌🏾",
    "newer emoji 🫠 🫨 🪿 🐦‍🔥 🍋‍🟩",
    "😀" * 10,
]: add(s)
# --- invalid-looking but valid Unicode
for s in [
    "noncharacters \ufdd0 \ufdef \ufffe \uffff \U0001fffe \U0010ffff",
    "private use \ue000 \uf8ff \U000f0000 \U0010fffd",
    "unassigned \u0378 \u0380 \u05ff \U0002fffd \U000e0080",
    "Unicode 17 letters \ua7ce\ua7cf \U00010940\U00010941 x\u088fy",
    "replacement char \ufffd and object \ufffc",
    "BOM in the middle \ufeffhere",
    "\ufeffBOM at start",
    "joiners a\u200db a\u200cb \u200d \u200c",
    "variation selectors a\ufe0fb \ufe0e \U000e0100",
    "soft\u00adhyphen",
    "bidi \u202eevil\u202c \u200fRTL mark\u200e \u2066isolate\u2069",
    "controls \x01\x02\x03 escape\x1b[31m red\x1b[0m DEL\x7f",
    "C1 controls \x80\x81\x9f",
    "lone surrogate-looking text \\ud800 \\udfff (escaped)",
    "tags \U000e0041\U000e0042 alone",
    "interlinear \ufff9a\ufffab\ufffb",
    "Hangul filler \u3164 and \uffa0 halfwidth filler",
    "Braille blank \u2800 and pattern \u2801\u2802",
    "combining at end e\u0301",
    "\u0300\u0301\u0302",
    "\ufe0f",
    "\U0001f3fb alone modifier",
    "musical 𝄞 𝄢 and domino 🀱",
]: add(s)
# --- long runs (exercise long BPE words)
add("a" * 300)
add("ab" * 150)
add("supercalifragilisticexpialidocious" * 6)
add("Pneumonoultramicroscopicsilicovolcanoconiosis and Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch")
add("xyzzy" * 80)
add("あ" * 100)
add("🙂" * 40)
add("." * 200)
add(" " + "b" * 257)
# --- random-ish mixed lines with a fixed seed (deterministic)
rng = random.Random(20240601)
alphabet = (list("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789 .,;:!?'\"-()\t") +
            list("éüßçñøåæœ") + list("αβγδλμπσω") + list("абвгдежзий") +
            list("中文字日本語") + list("한국") + ["😀", "👍🏽", "\u0301", "\u00a0", "\u3000", "’", "'s", "'ll"])
for i in range(40):
    n = rng.randint(5, 60)
    add("".join(rng.choice(alphabet) for _ in range(n)))
# --- more prose to reach a few hundred lines
prose = """Friends, Romans, countrymen, lend me your ears;
I come to bury Caesar, not to praise him.
The evil that men do lives after them;
The good is oft interred with their bones;
So let it be with Caesar. The noble Brutus
Hath told you Caesar was ambitious:
If it were so, it was a grievous fault,
And grievously hath Caesar answer'd it.
All the world's a stage,
And all the men and women merely players;
They have their exits and their entrances;
And one man in his time plays many parts,
His acts being seven ages.
Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
O Romeo, Romeo! wherefore art thou Romeo?
Deny thy father and refuse thy name;
Or, if thou wilt not, be but sworn my love,
And I'll no longer be a Capulet.
What's in a name? that which we call a rose
By any other name would smell as sweet;
If music be the food of love, play on;
Give me excess of it, that, surfeiting,
The appetite may sicken, and so die.
Is this a dagger which I see before me,
The handle toward my hand? Come, let me clutch thee.
Tomorrow, and tomorrow, and tomorrow,
Creeps in this petty pace from day to day,
To the last syllable of recorded time;
Out, out, brief candle!
Life's but a walking shadow, a poor player,
That struts and frets his hour upon the stage,
And then is heard no more. It is a tale
Told by an idiot, full of sound and fury,
Signifying nothing.
Double, double toil and trouble;
Fire burn and cauldron bubble.
Lord, what fools these mortals be!
The course of true love never did run smooth.
We are such stuff as dreams are made on,
and our little life is rounded with a sleep.
Now, God be thanked! who has match'd us with His hour,
'Twas brillig, and the slithy toves / Did gyre and gimble in the wabe:
KING HENRY V. Once more unto the breach, dear friends, once more;
  FIRST WITCH. When shall we three meet again
    In thunder, lightning, or in rain?
Enter HAMLET, reading.
[Exit.]
ACT I. SCENE 1. Elsinore. A platform before the Castle."""
for s in prose.split("\n"):
    add(s)
# --- all-cases contractions at word ends in sentences
for s in [
    "We'd've thought they'd've known.",
    "Y'ALL'D'VE DONE IT",
    "it's IT'S It's iT's",
    "I've I'VE I'Ve i've",
    "they'll THEY'LL They'll tHEY'll",
    "'S'T'RE'VE'M'LL'D",
    "'s't're've'm'll'd",
]: add(s)
# --- lines that mix everything
for s in [
    "Mixed: café 123 ΑΒΓ абв 中文 😀👍🏽 !!! 'll\tend",
    "  Leading spaces, then 'quotes', then numbers 1234567 and emoji 🇺🇸.  ",
    "\tTabbed\t'll\t42\t你好\t😀\t",
    "x\u00a0'll y\u3000'd",
    "end with newline-like U+2028\u2028",
    "spaces before emoji    😀 and after 😀    ",
    "A1!b2?c3.Δ4;Ж5:中6",
    "<|endoftext|> followed by café and 😀",
]: add(s)
text = "\n".join(L) + "\n"
import os
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance.txt")
open(out, "w", encoding="utf-8", newline="").write(text)
print(len(L), "lines", len(text.encode()), "bytes")

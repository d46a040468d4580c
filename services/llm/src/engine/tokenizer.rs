//! The tokenizer of a GGUF model, built from its metadata.
//!
//! A GGUF file carries its tokenizer as metadata (`tokenizer.ggml.*`): the
//! vocabulary, each token's type, and either BPE merges or SentencePiece
//! scores. [`Tokenizer::from_gguf`] builds a tokenizer from that alone — no
//! `tokenizer.json` — and reproduces llama.cpp's tokenization id for id, so a
//! prompt is split exactly as the model was served by llama.cpp-based tools.
//!
//! # The two algorithms
//!
//! **Byte-level BPE** (`tokenizer.ggml.model = "gpt2"`: SmolLM, Qwen, Llama 3,
//! …). The text is first cut into words by the pre-tokenizer named in
//! `tokenizer.ggml.pre`: a list of regular expressions applied one after the
//! other, each cutting the pieces left by the previous one (a piece is its
//! matches plus the text between them). Every byte of a word is then mapped
//! to the printable character GPT-2 assigns to it, and the word starts as one
//! symbol per byte. The adjacent pair of symbols with the lowest merge rank
//! (its index in `tokenizer.ggml.merges`; the left-most pair on a tie) is
//! merged, again and again, until no adjacent pair has a merge. Each final
//! symbol is a token. Some pre-tokenizers (Llama 3's) look a whole word up in
//! the vocabulary first and skip the merges when it is there.
//!
//! **SentencePiece BPE** (`tokenizer.ggml.model = "llama"`: Llama 2, Gemma,
//! …). Spaces become `▁` (and, with `tokenizer.ggml.add_space_prefix`, a
//! space is put before the text and after every special token), the text
//! starts as one symbol per character, and the adjacent pair whose
//! concatenation is a vocabulary token with the highest score
//! (`tokenizer.ggml.scores`; the left-most pair on a tie) is merged, again and
//! again. A final symbol that is no token becomes its bytes' `<0xXX>` tokens
//! (byte fallback), or the unknown token when the vocabulary has none.
//!
//! # Special tokens
//!
//! Tokens of type *control* (e.g. `<|im_start|>`), *user-defined* (e.g.
//! Gemma's `\n\n` or Qwen's `<tool_call>`) and *unknown* are matched in the
//! raw text before either algorithm runs, as llama.cpp's
//! `tokenizer_st_partition` does: taking the special tokens longest text
//! first, every occurrence of each in the text still unclaimed becomes that
//! token, and the fragments between them are tokenized normally. With
//! `parse_special = false` only user-defined tokens are matched, so a chat
//! template typed by a user cannot smuggle control tokens in. For Phi-3
//! (and a few BERT-like models) llama.cpp also drops the whitespace after
//! (or before) some special tokens; so does this tokenizer.
//!
//! Like llama.cpp, the tokenizer also finds tokens by their text where the
//! metadata does not name them: end-of-turn tokens such as `<|im_end|>`,
//! `<|eot_id|>` or `<end_of_turn>` end a generation and count as control
//! tokens even when the file says otherwise, and so do the fill-in-the-middle
//! ones (`<|fim_pad|>`, `<|repo_name|>`, `<|file_sep|>`, …).
//!
//! # Differences from llama.cpp
//!
//! * Only the tokenizer models `gpt2` and `llama` are supported (not BERT,
//!   T5, RWKV, Gemma 4's `gemma4`, …), and of the BPE pre-tokenizers those
//!   llama.cpp defines by regular expressions alone (not Kimi K2, AFMoE,
//!   Tiny Aya, SuperBPE, DeepSeek LLM, …; see `PRE_TOKENIZERS`). Anything
//!   else is refused with an error naming what is supported. `gpt2` is
//!   accepted as a pre-tokenizer name for GPT-2's (llama.cpp knows `gpt-2`).
//! * Unicode categories (`\p{L}`, `\p{N}`, …) come from the `regex` crate's
//!   tables rather than llama.cpp's own; they can differ only for characters
//!   assigned in the newest Unicode versions.
//! * A byte-level BPE token with a character outside GPT-2's byte mapping
//!   (a few in Command R's vocabulary) prints as that character, where
//!   llama.cpp prints `[UNK_BYTE_0x…]`.
//! * Where several vocabulary tokens could be a fill-in-the-middle token of
//!   the same kind, the first in llama.cpp's list of names is taken (llama.cpp
//!   takes whichever its hash map yields first).

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{Content, Value};
use fancy_regex::Regex;

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_EOT: &str = "tokenizer.ggml.eot_token_id";
const KEY_EOM: &str = "tokenizer.ggml.eom_token_id";
const KEY_UNK: &str = "tokenizer.ggml.unknown_token_id";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const KEY_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
const KEY_FIM_PRE: [&str; 2] = [
    "tokenizer.ggml.fim_pre_token_id",
    "tokenizer.ggml.prefix_token_id",
];
const KEY_FIM_SUF: [&str; 2] = [
    "tokenizer.ggml.fim_suf_token_id",
    "tokenizer.ggml.suffix_token_id",
];
const KEY_FIM_MID: [&str; 2] = [
    "tokenizer.ggml.fim_mid_token_id",
    "tokenizer.ggml.middle_token_id",
];
const KEY_FIM_PAD: [&str; 1] = ["tokenizer.ggml.fim_pad_token_id"];
const KEY_FIM_REP: [&str; 1] = ["tokenizer.ggml.fim_rep_token_id"];
const KEY_FIM_SEP: [&str; 1] = ["tokenizer.ggml.fim_sep_token_id"];

/// Why a tokenizer could not be built from a GGUF file's metadata.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A metadata key the tokenizer needs is absent.
    #[error("the GGUF metadata has no {0}")]
    MissingKey(&'static str),
    /// A metadata key has a value of the wrong type.
    #[error("the GGUF metadata key {key} is not {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// A per-token array is shorter than the vocabulary.
    #[error("{key} has {len} entries but the vocabulary has {vocab_size} tokens")]
    ShortArray {
        /// The key of the array.
        key: &'static str,
        /// Its length.
        len: usize,
        /// The number of tokens.
        vocab_size: usize,
    },
    /// `tokenizer.ggml.tokens` is empty.
    #[error("the GGUF vocabulary (tokenizer.ggml.tokens) is empty")]
    EmptyVocabulary,
    /// `tokenizer.ggml.model` names a tokenizer this module does not implement.
    #[error("unsupported tokenizer model `{0}` (supported: gpt2, llama)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this module does not implement.
    #[error("unsupported pre-tokenizer `{name}` (supported: {supported})")]
    UnsupportedPreTokenizer {
        /// The name found in the metadata.
        name: String,
        /// The names that are supported, comma-separated.
        supported: String,
    },
    /// A pre-tokenizer's regular expression did not compile (a bug here).
    #[error("the pre-tokenizer regex `{pattern}` does not compile: {source}")]
    Regex {
        /// The regular expression.
        pattern: &'static str,
        /// What the regex engine said.
        #[source]
        source: Box<fancy_regex::Error>,
    },
    /// Neither the metadata nor the model type's default gives an
    /// end-of-sequence token inside the vocabulary.
    #[error("the model has no end-of-sequence token (tokenizer.ggml.eos_token_id)")]
    NoEos,
}

// Token attributes, as bit flags (llama.cpp's `llama_token_attr`, reduced to
// what tokenization and detokenization look at).
const ATTR_UNKNOWN: u8 = 1 << 0;
const ATTR_UNUSED: u8 = 1 << 1;
const ATTR_NORMAL: u8 = 1 << 2;
const ATTR_CONTROL: u8 = 1 << 3;
const ATTR_USER_DEFINED: u8 = 1 << 4;
const ATTR_BYTE: u8 = 1 << 5;
/// Whitespace before the token is dropped when it is matched as special.
const ATTR_LSTRIP: u8 = 1 << 6;
/// Whitespace after the token is dropped when it is matched as special.
const ATTR_RSTRIP: u8 = 1 << 7;

/// The attribute of a `tokenizer.ggml.token_type` value.
fn attr_of_type(token_type: i64) -> u8 {
    match token_type {
        1 => ATTR_NORMAL,
        2 => ATTR_UNKNOWN,
        3 => ATTR_CONTROL,
        4 => ATTR_USER_DEFINED,
        5 => ATTR_UNUSED,
        6 => ATTR_BYTE,
        _ => 0, // undefined
    }
}

// ---------------------------------------------------------------------------
// Pre-tokenizers
// ---------------------------------------------------------------------------

// The regular expressions are those of the models' own tokenizer.json, in
// the forms llama.cpp uses (case-insensitive groups spelled out).
const PAT_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const PAT_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_PUNCT_RUNS: &str = r"[\p{P}\$\+<=>\^~\|]+";
const PAT_PUNCT_RUNS_FALCON: &str = r"[\p{P}\$\+<=>\^~\|`]+";
const PAT_THREE_DIGITS: &str = r"[0-9][0-9][0-9]";
const PAT_DIGIT: &str = r"\p{N}";
const PAT_PORO: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";
const PAT_GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_DEEPSEEK3: &str = r"[!\x22#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PAT_CJK: &str = r"[一-龥぀-ゟ゠-ヿ]+";
const PAT_BAILING: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const PAT_MINICPM5: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A family of pre-tokenizers sharing their regular expressions and flags.
struct PreTokenizerFamily {
    /// The values of `tokenizer.ggml.pre` that select it.
    names: &'static [&'static str],
    /// The regular expressions, applied in sequence.
    patterns: &'static [&'static str],
    /// Whether a word found whole in the vocabulary skips the merges.
    ignore_merges: bool,
    /// The default of `add_bos_token` when it differs from BPE's (`false`).
    add_bos: bool,
    /// Whether the family has no BOS token unless the metadata names one.
    no_bos: bool,
}

const fn family(
    names: &'static [&'static str],
    patterns: &'static [&'static str],
) -> PreTokenizerFamily {
    PreTokenizerFamily {
        names,
        patterns,
        ignore_merges: false,
        add_bos: false,
        no_bos: false,
    }
}

/// The pre-tokenizers supported, as llama.cpp maps `tokenizer.ggml.pre` to
/// them (`llama_vocab::impl::load` and `llm_tokenizer_bpe`).
static PRE_TOKENIZERS: &[PreTokenizerFamily] = &[
    family(
        &["default"],
        &[PAT_PUNCT_RUNS, PAT_GPT2, r"\p{N}+", PAT_THREE_DIGITS],
    ),
    PreTokenizerFamily {
        ignore_merges: true,
        add_bos: true,
        ..family(
            &[
                "llama3",
                "llama-v3",
                "llama-bpe",
                "falcon3",
                "falcon-h1",
                "pixtral",
                "midm-2.0",
                "lfm2",
                "jina-v5-nano",
            ],
            &[PAT_LLAMA3],
        )
    },
    family(&["dbrx", "smaug-bpe"], &[PAT_LLAMA3]),
    PreTokenizerFamily {
        no_bos: true,
        ..family(&["chatglm-bpe"], &[PAT_LLAMA3])
    },
    PreTokenizerFamily {
        no_bos: true,
        ignore_merges: true,
        ..family(&["glm4", "glm5"], &[PAT_LLAMA3])
    },
    family(
        &[
            "gpt-2",
            "gpt2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
            "exaone4",
            "mpt",
            "olmo",
            "jais",
            "trillion",
            "granite-docling",
        ],
        &[PAT_GPT2],
    ),
    family(
        &[
            "starcoder",
            "refact",
            "smollm",
            "command-r",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
        ],
        &[PAT_DIGIT, PAT_GPT2],
    ),
    family(
        &[
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "megrez",
            "stablelm2",
            "hunyuan",
            "solar-open",
            "grok-2",
        ],
        &[PAT_QWEN2],
    ),
    family(&["qwen35"], &[PAT_QWEN35]),
    family(
        &["falcon"],
        &[PAT_PUNCT_RUNS_FALCON, PAT_GPT2, PAT_THREE_DIGITS],
    ),
    family(&["poro-chat", "bloom", "gpt3-finnish"], &[PAT_PORO]),
    family(&["viking"], &[PAT_PORO, PAT_DIGIT]),
    family(
        &["deepseek-coder"],
        &[
            r"[\r\n]",
            r"\s?\p{L}+",
            r"\s?\p{P}+",
            r"[一-龥ࠀ-一가-퟿]+",
            PAT_DIGIT,
        ],
    ),
    family(
        &["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
        &[r"\p{N}{1,3}", PAT_CJK, PAT_DEEPSEEK3],
    ),
    PreTokenizerFamily {
        ignore_merges: true,
        add_bos: true,
        ..family(&["tekken"], &[PAT_TEKKEN])
    },
    family(
        &["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"],
        &[PAT_GPT4O],
    ),
    family(&["seed-coder"], &[PAT_SEED_CODER]),
    family(&["bailingmoe", "bailingmoe2", "llada-moe"], &[PAT_BAILING]),
    PreTokenizerFamily {
        ignore_merges: true,
        ..family(&["minicpm5"], &[r"\p{N}{1,3}", PAT_MINICPM5])
    },
];

/// The family a `tokenizer.ggml.pre` value selects.
fn pre_tokenizer_family(name: &str) -> Option<&'static PreTokenizerFamily> {
    PRE_TOKENIZERS.iter().find(|f| f.names.contains(&name))
}

/// Every supported `tokenizer.ggml.pre` value, comma-separated.
fn supported_pre_tokenizers() -> String {
    PRE_TOKENIZERS
        .iter()
        .flat_map(|f| f.names.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// GPT-2's byte <-> character mapping
// ---------------------------------------------------------------------------

/// GPT-2's mapping of bytes to printable characters, both ways.
struct ByteChars {
    /// The character standing for each byte.
    to_char: [char; 256],
    /// The byte each character up to U+0143 stands for, if any.
    to_byte: [Option<u8>; 324],
}

fn byte_chars() -> &'static ByteChars {
    static TABLE: OnceLock<ByteChars> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut to_char = ['\0'; 256];
        let mut to_byte = [None; 324];
        // Printable bytes stand for themselves; the others, in order, for
        // U+0100 onwards.
        let mut next_extra = 256u32;
        for byte in 0..=255u8 {
            let printable = matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
            let code = if printable {
                u32::from(byte)
            } else {
                let code = next_extra;
                next_extra += 1;
                code
            };
            // Every code here is below U+0144, hence a valid scalar value.
            let c = char::from_u32(code).unwrap_or('\u{FFFD}');
            to_char[usize::from(byte)] = c;
            to_byte[code as usize] = Some(byte);
        }
        ByteChars { to_char, to_byte }
    })
}

/// The bytes a byte-level BPE token's text stands for. Characters outside
/// GPT-2's mapping (in a few of Command R's tokens) are kept as UTF-8.
fn unmap_byte_level(text: &str) -> Vec<u8> {
    let table = byte_chars();
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match table.to_byte.get(c as usize).copied().flatten() {
            Some(b) => bytes.push(b),
            None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

/// The byte a `<0xAB>` token stands for.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

// ---------------------------------------------------------------------------
// Special-token matching
// ---------------------------------------------------------------------------

/// The special tokens (control, user-defined, unknown) in llama.cpp's
/// partition order, and a trie over their texts to find which of them occur
/// in a text without scanning it once per token.
struct SpecialTokens {
    /// Token ids, longest text first (then lowest id).
    order: Vec<u32>,
    /// Trie nodes; node 0 is the root.
    nodes: Vec<TrieNode>,
    /// The root's children by byte (0: none), for a fast first step.
    root: Box<[u32; 256]>,
}

#[derive(Default)]
struct TrieNode {
    /// Children, sorted by byte.
    children: Vec<(u8, u32)>,
    /// The position in `order` of the token whose text ends here.
    rank: Option<u32>,
}

impl SpecialTokens {
    fn new(pieces: &[String], attrs: &[u8]) -> Self {
        let mut order: Vec<u32> = (0..pieces.len())
            .filter(|&i| attrs[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN) != 0)
            .map(|i| i as u32)
            .collect();
        order.sort_by(|&a, &b| {
            let (a_len, b_len) = (pieces[a as usize].len(), pieces[b as usize].len());
            b_len.cmp(&a_len).then(a.cmp(&b))
        });
        let mut nodes = vec![TrieNode::default()];
        let mut root = Box::new([0u32; 256]);
        for (rank, &id) in order.iter().enumerate() {
            let mut node = 0usize;
            for (depth, &byte) in pieces[id as usize].as_bytes().iter().enumerate() {
                let existing = if depth == 0 {
                    Some(root[usize::from(byte)]).filter(|&n| n != 0)
                } else {
                    let children = &nodes[node].children;
                    children
                        .binary_search_by_key(&byte, |&(b, _)| b)
                        .ok()
                        .map(|i| children[i].1)
                };
                node = match existing {
                    Some(n) => n as usize,
                    None => {
                        let n = nodes.len() as u32;
                        nodes.push(TrieNode::default());
                        if depth == 0 {
                            root[usize::from(byte)] = n;
                        } else {
                            let children = &mut nodes[node].children;
                            let at = children.partition_point(|&(b, _)| b < byte);
                            children.insert(at, (byte, n));
                        }
                        n as usize
                    }
                };
            }
            // Identical texts: the first in partition order claims them all.
            nodes[node].rank.get_or_insert(rank as u32);
        }
        Self { order, nodes, root }
    }

    /// The special tokens occurring in `text` that `eligible` accepts, in
    /// partition order.
    fn occurring(&self, text: &str, eligible: impl Fn(u32) -> bool) -> Vec<u32> {
        let bytes = text.as_bytes();
        let mut ranks = Vec::new();
        for (start, &first) in bytes.iter().enumerate() {
            let mut node = self.root[usize::from(first)] as usize;
            let mut pos = start + 1;
            while node != 0 {
                if let Some(rank) = self.nodes[node].rank
                    && eligible(self.order[rank as usize])
                {
                    ranks.push(rank);
                }
                let Some(&byte) = bytes.get(pos) else { break };
                let children = &self.nodes[node].children;
                node = match children.binary_search_by_key(&byte, |&(b, _)| b) {
                    Ok(i) => children[i].1 as usize,
                    Err(_) => 0,
                };
                pos += 1;
            }
        }
        ranks.sort_unstable();
        ranks.dedup();
        ranks.into_iter().map(|r| self.order[r as usize]).collect()
    }
}

/// A piece of the text being tokenized: raw text still to tokenize, or a
/// special token matched in it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fragment {
    Text(Range<usize>),
    Token(u32),
}

// ---------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------

/// The algorithm-specific part of a tokenizer.
enum Model {
    Bpe(Bpe),
    Spm(Spm),
}

/// Byte-level BPE.
struct Bpe {
    /// The value of `tokenizer.ggml.pre` (after defaulting).
    pre: String,
    /// The pre-tokenizer's regular expressions, applied in sequence.
    regexes: Vec<Regex>,
    /// Whether a word found whole in the vocabulary skips the merges.
    ignore_merges: bool,
    /// `(left, right)` symbol ids → (rank, symbol id of the merged text).
    ///
    /// A symbol id is a token id, or — for the texts of merges that are not
    /// vocabulary tokens — an id from the vocabulary size up, so merging by
    /// ids gives exactly what merging by texts (as llama.cpp) does.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The symbol id of each byte's GPT-2 character.
    byte_symbols: Box<[u32; 256]>,
}

/// SentencePiece-style BPE.
struct Spm {
    /// Each token's score.
    scores: Vec<f32>,
    /// The `<0xAB>` token of each byte (or the byte itself as a token).
    byte_tokens: Box<[Option<u32>; 256]>,
}

/// A tokenizer built from a GGUF file's metadata, matching llama.cpp's.
/// See the [module documentation](self).
pub struct Tokenizer {
    model: Model,
    /// Each token's text as stored in the vocabulary.
    pieces: Vec<String>,
    /// Each token's `ATTR_*` flags.
    attrs: Vec<u8>,
    /// Token text → id (the last id for duplicated texts, as llama.cpp).
    vocab: HashMap<String, u32>,
    specials: SpecialTokens,
    bos: Option<u32>,
    eos: u32,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    end_of_generation: HashSet<u32>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Tokenizer");
        match &self.model {
            Model::Bpe(bpe) => s
                .field("model", &"gpt2")
                .field("pre", &bpe.pre)
                .field("merges", &bpe.merges.len()),
            Model::Spm(_) => s.field("model", &"llama"),
        };
        let mut eog: Vec<u32> = self.end_of_generation.iter().copied().collect();
        eog.sort_unstable();
        s.field("vocab_size", &self.pieces.len())
            .field("special_tokens", &self.specials.order.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("end_of_generation", &eog)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("add_space_prefix", &self.add_space_prefix)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*`
    /// metadata.
    pub fn from_gguf(content: &Content) -> Result<Self, TokenizerError> {
        let md = &content.metadata;
        let model_name = get_str(md, KEY_MODEL)?.ok_or(TokenizerError::MissingKey(KEY_MODEL))?;
        // The pre-tokenizer for BPE; `None` for SentencePiece.
        let family = match model_name {
            "gpt2" => {
                let pre = get_str(md, KEY_PRE)?.filter(|p| !p.is_empty());
                let name = pre.unwrap_or_else(|| {
                    tracing::warn!("the GGUF metadata has no {KEY_PRE}; using `default`");
                    "default"
                });
                let family = pre_tokenizer_family(name).ok_or_else(|| {
                    TokenizerError::UnsupportedPreTokenizer {
                        name: name.to_owned(),
                        supported: supported_pre_tokenizers(),
                    }
                })?;
                Some((name, family))
            }
            "llama" => None,
            other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
        };
        let is_bpe = family.is_some();

        let pieces = read_pieces(md)?;
        let n = pieces.len();
        let mut vocab = HashMap::with_capacity(n);
        for (i, piece) in pieces.iter().enumerate() {
            vocab.insert(piece.clone(), i as u32);
        }
        let mut attrs = match get_array(md, KEY_TOKEN_TYPE)? {
            None => vec![ATTR_NORMAL; n],
            Some(types) => {
                check_len(KEY_TOKEN_TYPE, types.len(), n)?;
                types[..n]
                    .iter()
                    .map(|v| as_i64(v).map(attr_of_type))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| wrong_type(KEY_TOKEN_TYPE, "an array of integers"))?
            }
        };

        // Special ids: the model type's defaults, then the metadata's.
        let (default_bos, default_eos, default_unk) = if is_bpe {
            let no_bos = family.is_some_and(|(_, f)| f.no_bos);
            ((!no_bos).then_some(11), Some(11), None)
        } else {
            (Some(1), Some(2), Some(0))
        };
        let bos = special_id(md, KEY_BOS, default_bos, n)?;
        let eos = special_id(md, KEY_EOS, default_eos, n)?;
        let unk = special_id(md, KEY_UNK, default_unk, n)?;
        let add_bos =
            get_bool(md, KEY_ADD_BOS)?.unwrap_or(!is_bpe || family.is_some_and(|(_, f)| f.add_bos));
        let add_eos = get_bool(md, KEY_ADD_EOS)?.unwrap_or(false);
        let add_space_prefix = get_bool(md, KEY_ADD_SPACE_PREFIX)?.unwrap_or(!is_bpe);

        let end_of_generation = end_of_generation(md, &pieces, &vocab, &mut attrs, eos)?;
        let eos = eos.ok_or(TokenizerError::NoEos)?;
        set_strip_attributes(md, &vocab, &mut attrs)?;

        let model = match family {
            Some((name, family)) => Model::Bpe(Bpe::new(md, name, family, &vocab, n)?),
            None => Model::Spm(Spm::new(md, &vocab, n)?),
        };
        let specials = SpecialTokens::new(&pieces, &attrs);
        Ok(Self {
            model,
            pieces,
            attrs,
            vocab,
            specials,
            bos,
            eos,
            unk,
            add_bos,
            add_eos,
            add_space_prefix,
            end_of_generation,
        })
    }

    /// The token ids of `text`.
    ///
    /// `add_special`: prepend BOS when the model's metadata says so
    /// (`tokenizer.ggml.add_bos_token`; by default yes for SentencePiece
    /// models, no for BPE ones) and append EOS if `add_eos_token`.
    ///
    /// `parse_special`: texts of control and user-defined tokens inside
    /// `text` become those tokens (for rendered chat templates); otherwise
    /// only user-defined tokens are, and control tokens' texts are tokenized
    /// as plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special
            && self.add_bos
            && let Some(bos) = self.bos
        {
            out.push(bos);
        }
        let fragments = self.partition(text, parse_special);
        match &self.model {
            Model::Bpe(bpe) => {
                let mut scratch = BpeScratch::default();
                for fragment in fragments {
                    match fragment {
                        Fragment::Text(range) => {
                            self.encode_bpe(bpe, &text[range], &mut scratch, &mut out);
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Model::Spm(spm) => {
                let mut scratch = SpmScratch::default();
                let mut after_special = true;
                for fragment in fragments {
                    match fragment {
                        Fragment::Text(range) => {
                            let mut escaped = String::with_capacity(range.len() + 8);
                            if self.add_space_prefix && after_special {
                                escaped.push('▁');
                            }
                            for c in text[range].chars() {
                                escaped.push(if c == ' ' { '▁' } else { c });
                            }
                            self.encode_spm(spm, &escaped, &mut scratch, &mut out);
                            after_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            after_special = true;
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos);
        }
        out
    }

    /// The bytes a token stands for when printed: byte-level BPE characters
    /// mapped back to bytes, SentencePiece's `▁` as a space, `<0xAB>` tokens
    /// as that byte, user-defined tokens as their text. Control, unknown and
    /// unused tokens (and ids outside the vocabulary) give no bytes. A token
    /// may end inside a UTF-8 sequence: see [`StreamDecoder`].
    pub fn token_bytes(&self, id: u32) -> Cow<'_, [u8]> {
        let (Some(piece), Some(&attr)) =
            (self.pieces.get(id as usize), self.attrs.get(id as usize))
        else {
            return Cow::Borrowed(&[]);
        };
        if attr & (ATTR_CONTROL | ATTR_UNKNOWN) != 0 {
            Cow::Borrowed(&[])
        } else if attr & ATTR_USER_DEFINED != 0 {
            Cow::Borrowed(piece.as_bytes())
        } else if attr & ATTR_NORMAL != 0 {
            match &self.model {
                Model::Bpe(_) => Cow::Owned(unmap_byte_level(piece)),
                Model::Spm(_) if piece.contains('▁') => {
                    Cow::Owned(piece.replace('▁', " ").into_bytes())
                }
                Model::Spm(_) => Cow::Borrowed(piece.as_bytes()),
            }
        } else if attr & ATTR_BYTE != 0 {
            match parse_byte_token(piece) {
                Some(byte) => Cow::Owned(vec![byte]),
                None => Cow::Borrowed(&[]),
            }
        } else {
            Cow::Borrowed(&[])
        }
    }

    /// The text of `ids`: their [`token_bytes`](Self::token_bytes)
    /// concatenated (so control tokens are skipped), as UTF-8 with invalid
    /// sequences replaced by U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            bytes.extend_from_slice(&self.token_bytes(id));
        }
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Whether [`encode`](Self::encode) with `add_special` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// Whether `id` ends a generation: EOS, the end-of-turn token
    /// (`tokenizer.ggml.eot_token_id`, or found by its text), and the tokens
    /// llama.cpp recognises by their text (`<|im_end|>`, `<|eot_id|>`,
    /// `<end_of_turn>`, `<|endoftext|>`, `<|end|>`, fill-in-the-middle
    /// padding/repository/file separators, …).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }

    /// Whether `id` is a control token (including those recognised by
    /// their text as ending a turn).
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & ATTR_CONTROL != 0)
    }

    /// A token's id by its exact text (e.g. `"<|im_end|>"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.get(text).copied()
    }

    /// A token's text as stored in the vocabulary (`""` outside it).
    pub fn piece(&self, id: u32) -> &str {
        self.pieces.get(id as usize).map_or("", String::as_str)
    }

    /// Splits `text` on the special tokens occurring in it, longest token
    /// text first, as llama.cpp's `tokenizer_st_partition`.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        let found = self.specials.occurring(text, |id| {
            parse_special || self.attrs[id as usize] & (ATTR_CONTROL | ATTR_UNKNOWN) == 0
        });
        let bytes = text.as_bytes();
        let mut fragments = vec![Fragment::Text(0..text.len())];
        for id in found {
            let needle = self.pieces[id as usize].as_str();
            let attr = self.attrs[id as usize];
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(range) = fragment else {
                    next.push(fragment);
                    continue;
                };
                let mut rest = range.start;
                while let Some(found) = text[rest..range.end].find(needle) {
                    let at = rest + found;
                    let mut left_end = at;
                    if attr & ATTR_LSTRIP != 0 {
                        while left_end > rest && is_c_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > rest {
                        next.push(Fragment::Text(rest..left_end));
                    }
                    next.push(Fragment::Token(id));
                    rest = at + needle.len();
                    if attr & ATTR_RSTRIP != 0 {
                        while rest < range.end && is_c_space(bytes[rest]) {
                            rest += 1;
                        }
                    }
                }
                if rest < range.end {
                    next.push(Fragment::Text(rest..range.end));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// Byte-level BPE of a text fragment without special tokens.
    fn encode_bpe(&self, bpe: &Bpe, text: &str, scratch: &mut BpeScratch, out: &mut Vec<u32>) {
        // Pre-tokenize: each regex splits the pieces the previous one left.
        let mut words = Vec::new();
        words.push(0..text.len());
        let mut next = Vec::new();
        for regex in &bpe.regexes {
            next.clear();
            for range in words.drain(..) {
                split_by_regex(regex, text, range, &mut next);
            }
            std::mem::swap(&mut words, &mut next);
        }
        for range in words {
            self.encode_bpe_word(bpe, &text.as_bytes()[range], scratch, out);
        }
    }

    /// Byte-level BPE of one pre-tokenized word.
    fn encode_bpe_word(
        &self,
        bpe: &Bpe,
        word: &[u8],
        scratch: &mut BpeScratch,
        out: &mut Vec<u32>,
    ) {
        if word.is_empty() {
            return;
        }
        if bpe.ignore_merges {
            let table = byte_chars();
            let mapped: String = word
                .iter()
                .map(|&b| table.to_char[usize::from(b)])
                .collect();
            if let Some(&id) = self.vocab.get(&mapped) {
                out.push(id);
                return;
            }
        }
        let symbols = &mut scratch.symbols;
        symbols.clear();
        for (i, &byte) in word.iter().enumerate() {
            symbols.push(Symbol {
                id: bpe.byte_symbols[usize::from(byte)],
                start: i as u32,
                len: 1,
                prev: (i as u32).wrapping_sub(1),
                next: i as u32 + 1,
            });
        }
        // `prev` of the first and `next` of the last mean "none".
        let last = symbols.len() - 1;
        symbols[0].prev = NONE;
        symbols[last].next = NONE;

        let queue = &mut scratch.queue;
        queue.clear();
        let add_pair = |symbols: &[Symbol], queue: &mut BpeQueue, left: u32| {
            let l = &symbols[left as usize];
            if l.next == NONE {
                return;
            }
            let r = &symbols[l.next as usize];
            if let Some(&(rank, _)) = bpe.merges.get(&(l.id, r.id)) {
                queue.push(Reverse((rank, left, l.len + r.len)));
            }
        };
        for left in 0..last as u32 {
            add_pair(symbols, queue, left);
        }
        while let Some(Reverse((_, left, size))) = queue.pop() {
            let l = symbols[left as usize];
            if l.len == 0 || l.next == NONE {
                continue;
            }
            let r = symbols[l.next as usize];
            if r.len == 0 || l.len + r.len != size {
                continue; // outdated: one side has changed since
            }
            let Some(&(_, merged)) = bpe.merges.get(&(l.id, r.id)) else {
                continue;
            };
            let right = l.next;
            symbols[left as usize].id = merged;
            symbols[left as usize].len += r.len;
            symbols[left as usize].next = r.next;
            symbols[right as usize].len = 0;
            if r.next != NONE {
                symbols[r.next as usize].prev = left;
            }
            if l.prev != NONE {
                add_pair(symbols, queue, l.prev);
            }
            add_pair(symbols, queue, left);
        }

        let vocab_size = self.pieces.len() as u32;
        let mut i = 0u32;
        while i != NONE {
            let s = symbols[i as usize];
            if s.id < vocab_size {
                out.push(s.id);
            } else {
                // No token: llama.cpp looks each byte of the mapped text up
                // as a one-byte token, which only printable ASCII can be.
                let bytes = &word[s.start as usize..(s.start + s.len) as usize];
                for &b in bytes.iter().filter(|b| b.is_ascii_graphic()) {
                    let id = bpe.byte_symbols[usize::from(b)];
                    if id < vocab_size {
                        out.push(id);
                    }
                }
            }
            i = s.next;
        }
    }

    /// SentencePiece BPE of an escaped text fragment (spaces already `▁`).
    fn encode_spm(&self, spm: &Spm, text: &str, scratch: &mut SpmScratch, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let symbols = &mut scratch.symbols;
        symbols.clear();
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                id: 0,
                start: start as u32,
                len: c.len_utf8() as u32,
                prev: (i as u32).wrapping_sub(1),
                next: i as u32 + 1,
            });
        }
        let last = symbols.len() - 1;
        symbols[0].prev = NONE;
        symbols[last].next = NONE;

        let queue = &mut scratch.queue;
        queue.clear();
        let add_pair = |symbols: &[Symbol], queue: &mut BinaryHeap<SpmPair>, left: u32| {
            let l = &symbols[left as usize];
            if l.next == NONE {
                return;
            }
            let r = &symbols[l.next as usize];
            let size = l.len + r.len;
            let piece = &text[l.start as usize..(l.start + size) as usize];
            if let Some(&id) = self.vocab.get(piece) {
                queue.push(SpmPair {
                    score: spm.scores[id as usize],
                    left,
                    size,
                });
            }
        };
        for left in 0..last as u32 {
            add_pair(symbols, queue, left);
        }
        while let Some(pair) = queue.pop() {
            let l = symbols[pair.left as usize];
            if l.len == 0 || l.next == NONE {
                continue;
            }
            let r = symbols[l.next as usize];
            if r.len == 0 || l.len + r.len != pair.size {
                continue;
            }
            let right = l.next;
            symbols[pair.left as usize].len += r.len;
            symbols[pair.left as usize].next = r.next;
            symbols[right as usize].len = 0;
            if r.next != NONE {
                symbols[r.next as usize].prev = pair.left;
            }
            if l.prev != NONE {
                add_pair(symbols, queue, l.prev);
            }
            add_pair(symbols, queue, pair.left);
        }

        let mut i = 0u32;
        while i != NONE {
            let s = symbols[i as usize];
            let piece = &text[s.start as usize..(s.start + s.len) as usize];
            match self.vocab.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        if let Some(id) = spm.byte_tokens[usize::from(b)].or(self.unk) {
                            out.push(id);
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}

impl Bpe {
    /// The merges and pre-tokenizer of a byte-level BPE model whose
    /// vocabulary has `n` tokens.
    fn new(
        md: &HashMap<String, Value>,
        pre: &str,
        family: &PreTokenizerFamily,
        vocab: &HashMap<String, u32>,
        n: usize,
    ) -> Result<Self, TokenizerError> {
        let list = get_array(md, KEY_MERGES)?.ok_or(TokenizerError::MissingKey(KEY_MERGES))?;
        let mut merges = HashMap::with_capacity(list.len());
        let mut not_tokens: HashMap<String, u32> = HashMap::new();
        let mut symbol_id = |text: &str| match vocab.get(text) {
            Some(&id) => id,
            None => {
                let next = (n + not_tokens.len()) as u32;
                *not_tokens.entry(text.to_owned()).or_insert(next)
            }
        };
        let byte_symbols = byte_chars()
            .to_char
            .map(|c| symbol_id(c.encode_utf8(&mut [0; 4])));
        for (rank, merge) in list.iter().enumerate() {
            let Value::String(merge) = merge else {
                return Err(wrong_type(KEY_MERGES, "an array of strings"));
            };
            // "left right", split at the first space after the first byte.
            let Some(space) = merge.bytes().skip(1).position(|b| b == b' ') else {
                continue;
            };
            let (left, right) = (&merge[..=space], &merge[space + 2..]);
            let key = (symbol_id(left), symbol_id(right));
            let merged = symbol_id(&format!("{left}{right}"));
            // The first of duplicated merges wins, as in llama.cpp.
            merges.entry(key).or_insert((rank as u32, merged));
        }
        let regexes = family
            .patterns
            .iter()
            .map(|&pattern| {
                Regex::new(pattern).map_err(|e| TokenizerError::Regex {
                    pattern,
                    source: Box::new(e),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            pre: pre.to_owned(),
            regexes,
            ignore_merges: family.ignore_merges,
            merges,
            byte_symbols: Box::new(byte_symbols),
        })
    }
}

impl Spm {
    /// The scores and byte tokens of a SentencePiece model whose vocabulary
    /// has `n` tokens.
    fn new(
        md: &HashMap<String, Value>,
        vocab: &HashMap<String, u32>,
        n: usize,
    ) -> Result<Self, TokenizerError> {
        let scores = match get_array(md, KEY_SCORES)? {
            None => vec![0.0; n],
            Some(scores) => {
                check_len(KEY_SCORES, scores.len(), n)?;
                scores[..n]
                    .iter()
                    .map(|v| match v {
                        Value::F32(x) => Some(*x),
                        Value::I32(x) => Some(*x as f32),
                        _ => None,
                    })
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| wrong_type(KEY_SCORES, "an array of numbers"))?
            }
        };
        // `<0xAB>`, or else the byte itself as a one-character token.
        let byte_tokens = std::array::from_fn(|b| {
            vocab
                .get(&format!("<0x{b:02X}>"))
                .or_else(|| {
                    let byte = [b as u8];
                    std::str::from_utf8(&byte).ok().and_then(|s| vocab.get(s))
                })
                .copied()
        });
        Ok(Self {
            scores,
            byte_tokens: Box::new(byte_tokens),
        })
    }
}

/// `tokenizer.ggml.tokens`, with empty texts renamed `[EMPTY_<id>]` as
/// llama.cpp does.
fn read_pieces(md: &HashMap<String, Value>) -> Result<Vec<String>, TokenizerError> {
    let tokens = get_array(md, KEY_TOKENS)?.ok_or(TokenizerError::MissingKey(KEY_TOKENS))?;
    if tokens.is_empty() {
        return Err(TokenizerError::EmptyVocabulary);
    }
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| match token {
            Value::String(text) if text.is_empty() => Ok(format!("[EMPTY_{i}]")),
            Value::String(text) => Ok(text.clone()),
            _ => Err(wrong_type(KEY_TOKENS, "an array of strings")),
        })
        .collect()
}

/// The id under `key`, else `default`; ids outside the vocabulary (of `n`
/// tokens) are ignored.
fn special_id(
    md: &HashMap<String, Value>,
    key: &'static str,
    default: Option<u32>,
    n: usize,
) -> Result<Option<u32>, TokenizerError> {
    let valid = |id: u32| (id as usize) < n;
    let default = default.filter(|&id| valid(id));
    Ok(match get_u32(md, key)? {
        Some(id) if valid(id) => Some(id),
        Some(id) => {
            tracing::warn!("{key} = {id} is outside the vocabulary; ignoring it");
            default
        }
        None => default,
    })
}

/// The tokens that end a generation, as llama.cpp determines them: EOS,
/// the end-of-turn and end-of-message tokens and the fill-in-the-middle
/// padding, repository and file-separator tokens (from the metadata, else
/// found by their text), and the tokens with a known end-of-generation text.
/// Tokens found by their text become control tokens, and `attrs` is fixed
/// up for gpt-oss, Solar Open, Gemma 4 and PLaMo as llama.cpp does.
fn end_of_generation(
    md: &HashMap<String, Value>,
    pieces: &[String],
    vocab: &HashMap<String, u32>,
    attrs: &mut [u8],
    eos: Option<u32>,
) -> Result<HashSet<u32>, TokenizerError> {
    let n = attrs.len();
    // By key, else by text (then made a control token).
    let mut find = |keys: &[&'static str], names: &[&str]| -> Result<_, TokenizerError> {
        for key in keys {
            if let Some(id) = special_id(md, key, None, n)? {
                return Ok(Some(id));
            }
        }
        let found = names.iter().find_map(|name| vocab.get(*name).copied());
        if let Some(id) = found {
            attrs[id as usize] |= ATTR_CONTROL;
        }
        Ok(found)
    };
    let eot = find(&[KEY_EOT], EOT_NAMES)?;
    let eom = find(&[KEY_EOM], &["<|eom_id|>"])?;
    let [pre, suf, mid, pad, rep, sep] = FIM_NAMES;
    find(&KEY_FIM_PRE, pre)?;
    find(&KEY_FIM_SUF, suf)?;
    find(&KEY_FIM_MID, mid)?;
    let fim_ends = [
        find(&KEY_FIM_PAD, pad)?,
        find(&KEY_FIM_REP, rep)?,
        find(&KEY_FIM_SEP, sep)?,
    ];

    for (attr, piece) in attrs.iter_mut().zip(pieces) {
        if *attr & ATTR_CONTROL != 0 && piece.contains("unused") {
            *attr |= ATTR_UNUSED;
        }
    }
    let mut eog: HashSet<u32> = fim_ends.into_iter().flatten().collect();
    for name in EOG_NAMES {
        if let Some(&id) = vocab.get(*name) {
            eog.insert(id);
            attrs[id as usize] |= ATTR_CONTROL;
        }
    }
    // gpt-oss: these are always rendered.
    for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(&id) = vocab.get(name) {
            attrs[id as usize] = ATTR_USER_DEFINED;
        }
    }
    eog.extend([eos, eot, eom].into_iter().flatten());
    let has = |eog: &HashSet<u32>, name: &str| vocab.get(name).is_some_and(|id| eog.contains(id));
    // gpt-oss and Solar Open: `<|end|>` ends a message, not the generation.
    if ((has(&eog, "<|return|>") && has(&eog, "<|call|>"))
        || (has(&eog, "<|calls|>") && has(&eog, "<|flush|>")))
        && let Some(&id) = vocab.get("<|end|>").filter(|id| eog.contains(id))
    {
        eog.remove(&id);
        attrs[id as usize] = ATTR_USER_DEFINED;
    }
    // Gemma 4 and PLaMo have a normal `</s>`.
    if (has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>"))
        && let Some(&id) = vocab.get("</s>").filter(|id| eog.contains(id))
    {
        eog.remove(&id);
        attrs[id as usize] = ATTR_NORMAL;
    }
    Ok(eog)
}

/// Whitespace as C's `isspace` (which, unlike Rust's, includes `\v`).
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// The per-model whitespace stripping around special tokens that llama.cpp
/// sets by model name (Phi-3) or pre-tokenizer (Jina v2).
fn set_strip_attributes(
    md: &HashMap<String, Value>,
    vocab: &HashMap<String, u32>,
    attrs: &mut [u8],
) -> Result<(), TokenizerError> {
    let name = get_str(md, "general.name")?
        .unwrap_or("")
        .to_ascii_lowercase();
    let pre = get_str(md, KEY_PRE)?.unwrap_or("");
    let arch = get_str(md, "general.architecture")?.unwrap_or("");
    if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
        .iter()
        .any(|p| pre.contains(p))
        || ["nomic-bert-moe", "jina-bert-v3"]
            .iter()
            .any(|a| arch.contains(a))
    {
        set_attr(vocab, attrs, "<mask>", ATTR_LSTRIP, true);
    } else if name.contains("phi-3") || name.contains("phi3") {
        let special = ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN;
        for attr in attrs.iter_mut().filter(|a| **a & special != 0) {
            *attr |= ATTR_RSTRIP;
        }
        set_attr(vocab, attrs, "</s>", ATTR_RSTRIP, true);
        for text in ["<unk>", "<s>", "<|endoftext|>"] {
            set_attr(vocab, attrs, text, ATTR_RSTRIP, false);
        }
    } else if name.contains("modern-bert") {
        set_attr(vocab, attrs, "[MASK]", ATTR_LSTRIP, true);
    }
    Ok(())
}

/// Sets or clears `flag` on the token `text`, if there is one.
fn set_attr(vocab: &HashMap<String, u32>, attrs: &mut [u8], text: &str, flag: u8, on: bool) {
    if let Some(&id) = vocab.get(text) {
        let attr = &mut attrs[id as usize];
        *attr = if on { *attr | flag } else { *attr & !flag };
    }
}

/// "No symbol" in a symbol's `prev` / `next`.
const NONE: u32 = u32::MAX;

/// A symbol of a word being merged: a run of bytes in a doubly linked list.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    /// Its symbol id (BPE only; SPM looks the text up).
    id: u32,
    start: u32,
    /// Its length in bytes; 0 once merged into its left neighbour.
    len: u32,
    prev: u32,
    next: u32,
}

/// Candidate BPE merges as (rank, left symbol, size in bytes): lowest rank,
/// then left-most, first.
type BpeQueue = BinaryHeap<Reverse<(u32, u32, u32)>>;

/// Buffers reused across the words of one `encode` call.
#[derive(Default)]
struct BpeScratch {
    symbols: Vec<Symbol>,
    queue: BpeQueue,
}

#[derive(Default)]
struct SpmScratch {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<SpmPair>,
}

/// A candidate SentencePiece merge: highest score, then left-most, first.
struct SpmPair {
    score: f32,
    left: u32,
    size: u32,
}

impl PartialEq for SpmPair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SpmPair {}

impl PartialOrd for SpmPair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SpmPair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.size.cmp(&self.size))
    }
}

/// Appends to `out` the pieces `regex` cuts `text[range]` into: its matches
/// and the text between them.
fn split_by_regex(regex: &Regex, text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let base = range.start;
    let haystack = &text[range.clone()];
    let mut rest = 0;
    for found in regex.find_iter(haystack) {
        match found {
            Ok(m) => {
                if m.start() > rest {
                    out.push(base + rest..base + m.start());
                }
                if m.end() > m.start() {
                    out.push(base + m.start()..base + m.end());
                }
                rest = m.end();
            }
            Err(e) => {
                tracing::warn!("pre-tokenizer regex failed ({e}); keeping the rest whole");
                break;
            }
        }
    }
    if rest < haystack.len() {
        out.push(base + rest..range.end);
    }
}

/// The end-of-turn token's possible texts (llama.cpp's list).
const EOT_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

/// The fill-in-the-middle tokens' possible texts: prefix, suffix, middle,
/// padding, repository, file separator.
const FIM_NAMES: [&[&str]; 6] = [
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &[
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
    ],
    &["<|file_sep|>"],
];

/// Texts of tokens that end a generation (llama.cpp's list).
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// Turns token bytes into text as tokens arrive, holding back a UTF-8
/// sequence split across tokens until it is complete.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text completed by `id`'s bytes (possibly empty).
    pub fn push_token(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.push(&tokenizer.token_bytes(id))
    }

    /// The text completed by `bytes` (possibly empty). Invalid sequences
    /// become U+FFFD; an incomplete one at the end waits for more bytes.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(valid) => {
                    text.push_str(valid);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid_end = start + e.valid_up_to();
                    text.push_str(
                        std::str::from_utf8(&self.pending[start..valid_end]).unwrap_or_default(),
                    );
                    match e.error_len() {
                        Some(invalid) => {
                            text.push('\u{FFFD}');
                            start = valid_end + invalid;
                        }
                        None => {
                            start = valid_end;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        text
    }

    /// Whatever is still pending (an incomplete sequence, as U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

// ---------------------------------------------------------------------------
// Metadata access
// ---------------------------------------------------------------------------

fn wrong_type(key: &'static str, expected: &'static str) -> TokenizerError {
    TokenizerError::WrongType { key, expected }
}

fn check_len(key: &'static str, len: usize, vocab_size: usize) -> Result<(), TokenizerError> {
    if len < vocab_size {
        return Err(TokenizerError::ShortArray {
            key,
            len,
            vocab_size,
        });
    }
    Ok(())
}

fn get_str<'a>(
    md: &'a HashMap<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(key, "a string")),
    }
}

fn get_array<'a>(
    md: &'a HashMap<String, Value>,
    key: &'static str,
) -> Result<Option<&'a [Value]>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::Array(values)) => Ok(Some(values)),
        Some(_) => Err(wrong_type(key, "an array")),
    }
}

fn get_bool(
    md: &HashMap<String, Value>,
    key: &'static str,
) -> Result<Option<bool>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => as_i64(v)
            .map(|i| Some(i != 0))
            .ok_or_else(|| wrong_type(key, "a boolean")),
    }
}

fn get_u32(md: &HashMap<String, Value>, key: &'static str) -> Result<Option<u32>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => as_i64(v)
            .and_then(|i| u32::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| wrong_type(key, "a non-negative integer")),
    }
}

/// Any GGUF integer as an `i64`.
fn as_i64(value: &Value) -> Option<i64> {
    Some(match *value {
        Value::U8(v) => v.into(),
        Value::I8(v) => v.into(),
        Value::U16(v) => v.into(),
        Value::I16(v) => v.into(),
        Value::U32(v) => v.into(),
        Value::I32(v) => v.into(),
        Value::U64(v) => i64::try_from(v).ok()?,
        Value::I64(v) => v,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use candle_core::quantized::gguf_file::VersionedMagic;

    fn content(entries: Vec<(&str, Value)>) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata: entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn strings(items: &[&str]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|s| Value::String((*s).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn tokenizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tokenizer>();
    }

    #[test]
    fn every_pre_tokenizer_regex_compiles() {
        for family in PRE_TOKENIZERS {
            for pattern in family.patterns {
                Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            }
        }
        assert!(pre_tokenizer_family("smollm").is_some());
        assert!(pre_tokenizer_family("qwen2").is_some());
        assert!(pre_tokenizer_family("llama-bpe").unwrap().ignore_merges);
        assert!(pre_tokenizer_family("kimi-k2").is_none());
    }

    #[test]
    fn byte_chars_round_trip() {
        let table = byte_chars();
        assert_eq!(table.to_char[b' ' as usize], 'Ġ');
        assert_eq!(table.to_char[b'\n' as usize], 'Ċ');
        assert_eq!(table.to_char[b'a' as usize], 'a');
        let all: String = (0..=255u8).map(|b| table.to_char[b as usize]).collect();
        assert_eq!(unmap_byte_level(&all), (0..=255u8).collect::<Vec<_>>());
    }

    /// A toy byte-level BPE vocabulary: the printable bytes, `Ġ`, and a few
    /// merges.
    fn toy_bpe() -> Tokenizer {
        let mut tokens: Vec<String> = (0..=255u8)
            .map(|b| byte_chars().to_char[b as usize].to_string())
            .collect();
        for t in [
            "he",
            "ll",
            "llo",
            "hello",
            "Ġw",
            "Ġwor",
            "Ġworld",
            "<|im_end|>",
            "<x>",
        ] {
            tokens.push(t.to_owned());
        }
        let mut types = vec![Value::I32(1); tokens.len()];
        types[263] = Value::I32(3);
        types[264] = Value::I32(4);
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let c = content(vec![
            (KEY_MODEL, Value::String("gpt2".into())),
            (KEY_PRE, Value::String("gpt-2".into())),
            (KEY_TOKENS, strings(&tokens)),
            (KEY_TOKEN_TYPE, Value::Array(types)),
            (
                KEY_MERGES,
                strings(&[
                    "h e", "l l", "ll o", "he llo", "Ġ w", "Ġw o", "Ġwo r", "Ġw or", "Ġwor ld",
                    "l d",
                ]),
            ),
            (KEY_EOS, Value::U32(263)),
        ]);
        Tokenizer::from_gguf(&c).unwrap()
    }

    #[test]
    fn toy_bpe_merges_and_specials() {
        let t = toy_bpe();
        let hello = t.token_id("hello").unwrap();
        let world = t.token_id("Ġworld").unwrap();
        // "Ġwo" and "ld" are no tokens, but merging through them leads to
        // "Ġworld", as merging by texts does in llama.cpp.
        let ids = t.encode("hello world", false, false);
        assert_eq!(ids, vec![hello, world]);
        assert_eq!(t.decode(&ids), "hello world");
        // Control token: only with parse_special.
        let ids = t.encode("hi<|im_end|>", false, true);
        assert_eq!(ids.last(), Some(&263));
        let ids = t.encode("hi<|im_end|>", false, false);
        assert!(!ids.contains(&263));
        // User-defined token: always.
        assert!(t.encode("a<x>b", false, false).contains(&264));
        assert!(t.is_end_of_generation(263));
        assert!(t.is_control(263));
        assert!(!t.adds_bos());
        assert_eq!(t.token_bytes(263).as_ref(), b"");
        assert_eq!(t.token_bytes(264).as_ref(), b"<x>");
    }

    #[test]
    fn toy_spm_scores_and_byte_fallback() {
        let mut tokens = vec!["<unk>", "<s>", "</s>"];
        let hex: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(hex.iter().map(String::as_str));
        tokens.extend(["▁", "a", "b", "c", "ab", "bc", "▁a", "▁abc"]);
        let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        types.extend((0..8).map(|_| Value::I32(1)));
        let mut scores: Vec<Value> = (0..tokens.len()).map(|_| Value::F32(0.0)).collect();
        let at = |s: &str| tokens.iter().position(|t| *t == s).unwrap();
        scores[at("ab")] = Value::F32(-1.0);
        scores[at("bc")] = Value::F32(-2.0);
        scores[at("▁a")] = Value::F32(-3.0);
        scores[at("▁abc")] = Value::F32(-4.0);
        let c = content(vec![
            (KEY_MODEL, Value::String("llama".into())),
            (KEY_TOKENS, strings(&tokens)),
            (KEY_TOKEN_TYPE, Value::Array(types)),
            (KEY_SCORES, Value::Array(scores)),
        ]);
        let t = Tokenizer::from_gguf(&c).unwrap();
        assert_eq!(t.bos(), Some(1));
        assert_eq!(t.eos(), 2);
        assert!(t.adds_bos());
        // "▁abc": "ab" (-1) beats "bc" (-2) and "▁a" (-3); then "▁" + "ab"
        // is no token, "ab" + "c" neither: [▁, ab, c].
        let ids = t.encode("abc", false, false);
        assert_eq!(ids, vec![at("▁") as u32, at("ab") as u32, at("c") as u32]);
        // Unknown characters fall back to bytes.
        let ids = t.encode("é", true, false);
        assert_eq!(
            ids,
            vec![1, at("▁") as u32, at("<0xC3>") as u32, at("<0xA9>") as u32]
        );
        assert_eq!(t.decode(&ids), " é");
    }

    #[test]
    fn missing_metadata_is_a_clear_error() {
        let err = Tokenizer::from_gguf(&content(vec![])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the GGUF metadata has no tokenizer.ggml.model"
        );
        let err = Tokenizer::from_gguf(&content(vec![(KEY_MODEL, Value::String("gpt2".into()))]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the GGUF metadata has no tokenizer.ggml.tokens"
        );
        let err = Tokenizer::from_gguf(&content(vec![(KEY_MODEL, Value::String("bert".into()))]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported tokenizer model `bert`")
        );
        let err = Tokenizer::from_gguf(&content(vec![
            (KEY_MODEL, Value::String("gpt2".into())),
            (KEY_PRE, Value::String("kimi-k2".into())),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unsupported pre-tokenizer `kimi-k2` (supported: default, llama3")
        );
    }

    #[test]
    fn stream_decoder_holds_back_split_sequences() {
        let mut d = StreamDecoder::new();
        let euro = "€".as_bytes();
        assert_eq!(d.push(b"a"), "a");
        assert_eq!(d.push(&euro[..1]), "");
        assert_eq!(d.push(&euro[1..2]), "");
        assert_eq!(d.push(&euro[2..]), "€");
        assert_eq!(d.push(b"\xFFb"), "\u{FFFD}b");
        assert_eq!(d.push(&euro[..2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.finish(), "");
    }
}

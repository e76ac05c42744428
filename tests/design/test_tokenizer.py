"""SMILES tokens and vocabularies."""
from __future__ import annotations

import pytest

from pmtoolkit.design.tokenizer import SPECIALS, TokenError, Vocabulary, tokenize


def test_tokenize_keeps_bracket_atoms_two_letter_elements_and_ring_closures():
    assert tokenize("C[C@@H](Cl)c1ccc%12cc[nH]1Br.[Na+]") == [
        "C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "c", "%12", "c", "c", "[nH]", "1",
        "Br", ".", "[Na+]"]
    # Sc is sulfur then aromatic carbon, not scandium (which would need brackets)
    assert tokenize("Sc1ccccc1") == ["S", "c", "1", "c", "c", "c", "c", "c", "1"]
    for smi in ("CC(=O)Oc1ccccc1C(=O)O", "C/C=C\\C", "[13CH3]C#N", "C1CC2CCC1C2"):
        assert "".join(tokenize(smi)) == smi


@pytest.mark.parametrize("bad", ["CC[N", "CCX", "C C"])
def test_untokenisable_smiles_names_the_position(bad):
    with pytest.raises(TokenError, match="position"):
        tokenize(bad)


def test_vocabulary_is_stable_encodes_and_decodes():
    smiles = ["CCO", "c1ccccc1Cl", "C[S@+](C)O", "CCN"]
    v = Vocabulary.build(smiles)
    assert v.tokens[:3] == SPECIALS
    assert v == Vocabulary.build(list(reversed(smiles)))  # order of the data does not matter
    ids = v.encode("CCCl")
    assert ids[0] == v.bos and ids[-1] == v.eos
    assert v.decode(ids) == "CCCl"
    assert Vocabulary(tuple(v.tokens)) == v  # rebuilt from the saved token list


def test_unknown_token_and_too_long_are_token_errors_not_key_errors():
    v = Vocabulary.build(["CCO", "C[S@+](C)O"])
    with pytest.raises(TokenError, match=r"'\[S@@\+\]' is not in the model's vocabulary"):
        v.encode("C[S@@+](C)O")
    with pytest.raises(TokenError, match="maximum"):
        v.encode("CCCCCCCC", max_length=5)


def test_min_count_drops_rare_tokens():
    v = Vocabulary.build(["CCO", "CCO", "CCBr"], min_count=2)
    assert "Br" not in v and "O" in v

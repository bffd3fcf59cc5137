"""People: profile, symptom codes, consent ledger, subscription state, suppression, import/export/erase
and segment rules. Knows nothing about campaigns or how mail is sent."""

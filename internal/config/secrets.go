package config

import (
	"fmt"
	"strings"
)

// SecretKeysEnv holds the keys in the environment: separated by newlines or
// commas, current first. It wins over secrets.keys_file and secrets.keys.
const SecretKeysEnv = "KAIZEN_SECRET_KEYS"

// MinSecretKeyLen is the shortest key accepted, in characters.
const MinSecretKeyLen = 32

// Secrets ([secrets]) are the operator's secret keys: they seal mail bodies
// at rest and sign PINs, so every program that shares a store needs the same
// list. The first key seals and signs; every key is tried to open and
// verify, so a key is rotated by putting a new one first and dropping the
// old one once nothing sealed under it remains.
type Secrets struct {
	// Keys are written inline, current first.
	Keys []Secret `toml:"keys"`
	// KeysFile holds one key per line, current first; blank lines and
	// lines starting with # are skipped.
	KeysFile string `toml:"keys_file"`

	effective []Secret
	source    string
}

// Effective returns the keys in force, current first: from KAIZEN_SECRET_KEYS,
// secrets.keys_file or secrets.keys, or else the legacy setpass.secret_key as
// the only key. Empty when none is configured.
func (s Secrets) Effective() []Secret { return s.effective }

// Reveal returns the effective keys' bytes, current first, for the keyring.
func (s Secrets) Reveal() [][]byte {
	out := make([][]byte, len(s.effective))
	for i, k := range s.effective {
		out[i] = []byte(k.Reveal())
	}
	return out
}

// IsSet reports whether at least one key is in force.
func (s Secrets) IsSet() bool { return len(s.effective) > 0 }

// Source says where the keys came from, without revealing them: "inline",
// "file <path>", "env KAIZEN_SECRET_KEYS" or "setpass.secret_key (legacy,
// from …)"; "" when none is set.
func (s Secrets) Source() string { return s.source }

// MissingSecretsHelp says how to configure keys, for the errors of programs
// that need them.
const MissingSecretsHelp = "set secrets.keys, secrets.keys_file or " + SecretKeysEnv +
	" (at least one key of 32 or more characters, e.g. openssl rand -hex 32); " +
	"addusers, setpass and reminders sharing a store need the same keys"

func (v *validator) secrets(s *Secrets, sp *Setpass) {
	var keys []Secret
	var source string
	env := v.opts.Getenv(SecretKeysEnv)
	inline := len(s.Keys) > 0
	switch {
	case inline && s.KeysFile != "":
		v.addf("secrets.keys", "set both inline and as secrets.keys_file; keep one")
		return
	case env != "":
		source = "env " + SecretKeysEnv
		keys = splitKeys(env, ",\n", source)
		if len(keys) == 0 {
			v.addf("secrets.keys", "%s holds no key", SecretKeysEnv)
			return
		}
	case s.KeysFile != "":
		b, err := v.opts.ReadFile(s.KeysFile)
		if err != nil {
			v.addf("secrets.keys_file", "cannot read %q: %v", s.KeysFile, unwrapPath(err))
			return
		}
		source = "file " + s.KeysFile
		keys = splitKeys(string(b), "\n", source)
		if len(keys) == 0 {
			v.addf("secrets.keys_file", "%q holds no key", s.KeysFile)
			return
		}
	case inline:
		source = "inline"
		keys = s.Keys
	}
	if keys != nil && sp.SecretKey.IsSet() {
		v.addf("secrets.keys", "set, and so is the legacy setpass.secret_key (from %s): move that key into [secrets] "+
			"(first, if it is still the current one) and remove setpass.secret_key", sp.SecretKey.Source())
		return
	}
	if keys == nil && sp.SecretKey.IsSet() {
		// Its length is checked, and reported, as setpass.secret_key.
		s.effective = []Secret{sp.SecretKey}
		s.source = "setpass.secret_key (legacy, from " + sp.SecretKey.Source() + ")"
		return
	}
	bad := false
	for i, k := range keys {
		if n := len(k.Reveal()); n < MinSecretKeyLen {
			v.addf(fmt.Sprintf("secrets.keys[%d]", i), "is %d characters; each key must be at least %d (e.g. openssl rand -hex 32)", n, MinSecretKeyLen)
			bad = true
		}
		for j := range i {
			if keys[j].Reveal() == k.Reveal() {
				v.addf(fmt.Sprintf("secrets.keys[%d]", i), "repeats secrets.keys[%d]", j)
				bad = true
			}
		}
	}
	if bad {
		return
	}
	s.effective, s.source = keys, source
}

// splitKeys splits text into keys at any of seps, trimming spaces and
// skipping blank lines and # comments.
func splitKeys(text, seps, source string) []Secret {
	var out []Secret
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		out = append(out, Secret{value: f, source: source})
	}
	return out
}

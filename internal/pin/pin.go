// Package pin holds the rule for the PIN a requester chooses on the sign-up
// form and types again on the set-password page: exactly four ASCII digits.
// The sheet parser, setpass and addusers' flags all check it here, so the
// rule cannot differ between the place a PIN is taken and the place it is
// asked for.
package pin

// Len is the number of digits in a PIN.
const Len = 4

// Rule says what a PIN must be, for messages; it never includes a PIN.
const Rule = "exactly 4 digits"

// Valid reports whether s is a PIN: exactly four ASCII digits, nothing else
// (no spaces, no other scripts' digits; callers trim sheet cells first).
func Valid(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

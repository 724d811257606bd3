package pin

import (
	"regexp"
	"testing"
)

func TestValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"four digits", "0420", true},
		{"all zeros", "0000", true},
		{"all nines", "9999", true},
		{"empty", "", false},
		{"three digits", "123", false},
		{"five digits", "12345", false},
		{"letter", "12a4", false},
		{"space inside", "12 4", false},
		{"surrounding space", " 0420", false},
		{"sign", "+123", false},
		{"arabic-indic digits", "١٢٣٤", false},
		{"fullwidth digits", "１２３４", false},
		{"NUL", "12\x004", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.in); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzValid holds Valid to the rule as a regular expression would state
// it, for any input.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"0420", "", "123", "12345", "12a4", "١٢٣٤", " 0420", "0420\n"} {
		f.Add(s)
	}
	rule := regexp.MustCompile(`\A[0-9]{4}\z`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Valid(s), rule.MatchString(s); got != want {
			t.Errorf("Valid(%q) = %v, the rule says %v", s, got, want)
		}
	})
}

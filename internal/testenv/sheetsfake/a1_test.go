package sheetsfake

import "testing"

func TestParseA1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    rangeRef
		wantErr bool
		format  string // canonical String(); "" means same as in
	}{
		{in: "Sheet1!A1:C10", want: rangeRef{Sheet: "Sheet1", StartCol: 1, StartRow: 1, EndCol: 3, EndRow: 10}},
		{in: "'Form Responses 1'!A:Z", want: rangeRef{Sheet: "Form Responses 1", StartCol: 1, EndCol: 26}},
		{in: "'It''s'!B2", want: rangeRef{Sheet: "It's", StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}},
		{in: "A:C", want: rangeRef{StartCol: 1, EndCol: 3}},
		{in: "2:5", want: rangeRef{StartRow: 2, EndRow: 5}},
		{in: "A2:Z", want: rangeRef{StartCol: 1, StartRow: 2, EndCol: 26}},
		{in: "B2:5", want: rangeRef{StartCol: 2, StartRow: 2, EndRow: 5}},
		{in: "Sheet1", want: rangeRef{Sheet: "Sheet1"}},
		{in: "'My Sheet'", want: rangeRef{Sheet: "My Sheet"}},
		{in: "A1:B2", want: rangeRef{StartCol: 1, StartRow: 1, EndCol: 2, EndRow: 2}},
		{in: "aa1:az2", want: rangeRef{StartCol: 27, StartRow: 1, EndCol: 52, EndRow: 2}, format: "AA1:AZ2"},
		{in: "ZZZ1", want: rangeRef{StartCol: 18278, StartRow: 1, EndCol: 18278, EndRow: 1}},
		{in: "$A$1:$B$2", want: rangeRef{StartCol: 1, StartRow: 1, EndCol: 2, EndRow: 2}, format: "A1:B2"},
		{in: "C3:A1", want: rangeRef{StartCol: 1, StartRow: 1, EndCol: 3, EndRow: 3}, format: "A1:C3"},
		{in: "B2:B2", want: rangeRef{StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}, format: "B2"},
		{in: "Form Responses 1!A1", want: rangeRef{Sheet: "Form Responses 1", StartCol: 1, StartRow: 1, EndCol: 1, EndRow: 1}, format: "'Form Responses 1'!A1"},
		{in: "'A1'!B2", want: rangeRef{Sheet: "A1", StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}},
		{in: "tab01", want: rangeRef{StartCol: 13548, StartRow: 1, EndCol: 13548, EndRow: 1}, format: "TAB1"},
		{in: "'tab01'", want: rangeRef{Sheet: "tab01"}},
		{in: "Named_Range", want: rangeRef{Sheet: "Named_Range"}},
		{in: "", wantErr: true},
		{in: "Sheet1!", wantErr: true},
		{in: "!A1", wantErr: true},
		{in: "''!A1", wantErr: true},
		{in: "'Sheet1!A1", wantErr: true},
		{in: "'Sheet1'A1", wantErr: true},
		{in: "It's!A1", wantErr: true},
		{in: "Sheet1!A0", wantErr: true},
		{in: "Sheet1!AAAA1", wantErr: true},
		{in: "Sheet1!A:5", wantErr: true},
		{in: "Sheet1!A:C5", wantErr: true},
		{in: "Sheet1!A1:B2:C3", wantErr: true},
		{in: "Sheet1!A", wantErr: true},
		{in: "Sheet1!5", wantErr: true},
		{in: "Sheet1!A99999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseA1(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseA1(%q) = %+v, want error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseA1(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			format := tt.format
			if format == "" {
				format = tt.in
			}
			if s := got.String(); s != format {
				t.Errorf("String() = %q, want %q", s, format)
			}
		})
	}
}

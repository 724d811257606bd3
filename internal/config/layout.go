package config

import (
	"reflect"
	"strings"
)

// DateOrder says how a sheet writes a date with slashes and the year last,
// which the spreadsheet's locale decides: 11/20/2026 in the United States,
// 20/11/2026 in most other places. Other shapes are not ambiguous (ISO
// 2026-11-20, 2026/11/20; 20.11.2026 and 20-11-2026 are always day first).
type DateOrder string

const (
	MonthFirst DateOrder = "month-first" // 11/20/2026 (en_US; the default)
	DayFirst   DateOrder = "day-first"   // 20/11/2026 (en_GB, fr, es, it, pt, ...)
)

// Resolved is c with every empty header replaced by its default
// (DefaultSheetColumns): the one place a column's default is applied.
// Loaded settings are complete already (Load starts from Defaults and
// refuses an empty header); callers that build columns in code get theirs
// resolved through this.
func (c SheetColumns) Resolved() SheetColumns {
	fillEmpty(&c, DefaultSheetColumns())
	return c
}

// Resolved is c with every empty header replaced by its default
// (DefaultQuotaRequestColumns).
func (c QuotaRequestColumns) Resolved() QuotaRequestColumns {
	fillEmpty(&c, DefaultQuotaRequestColumns())
	return c
}

// fillEmpty sets each blank string field of *dst to def's. Both are the
// same struct of strings.
func fillEmpty[T any](dst *T, def T) {
	v, d := reflect.ValueOf(dst).Elem(), reflect.ValueOf(def)
	for i := range v.NumField() {
		if strings.TrimSpace(v.Field(i).String()) == "" {
			v.Field(i).SetString(d.Field(i).String())
		}
	}
}

package planfix_test

import (
	"testing"

	"github.com/chatrabridge/chatrabridge/internal/planfix"
)

// The completed status is an inactive one named so, the best name first; never an active
// one, nor one whose name says the opposite ("Incomplete", "Не выполнена", "Cancelled").
func TestCompletedStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []planfix.Status
		want     int64
	}{
		{"named", []planfix.Status{{ID: 1, Name: "New", IsActive: true}, {ID: 2, Name: "Cancelled"}, {ID: 3, Name: "Завершенная"}}, 3},
		{"incomplete is not", []planfix.Status{{ID: 1, Name: "Incomplete"}, {ID: 2, Name: "Не выполнена"}, {ID: 3, Name: "Done"}}, 3},
		{"best word first", []planfix.Status{{ID: 1, Name: "Closed"}, {ID: 2, Name: "Completed"}}, 2},
		{"active is not", []planfix.Status{{ID: 1, Name: "Completed", IsActive: true}}, 0},
		{"none named so", []planfix.Status{{ID: 1, Name: "Archive"}, {ID: 2, Name: "Incomplete"}}, 0},
	} {
		got := planfix.CompletedStatus(tc.statuses)
		if (got == nil && tc.want != 0) || (got != nil && got.ID != tc.want) {
			t.Errorf("%s: CompletedStatus = %+v, want %d", tc.name, got, tc.want)
		}
	}
}

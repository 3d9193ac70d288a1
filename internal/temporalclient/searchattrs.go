package temporalclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

// SearchAttributes checks that a namespace has the custom search attributes the
// conversation workflows set. Without them Temporal refuses every start of a workflow
// that sets one, so each webhook would be answered 500: a process must not start (nor
// say it is ready) against such a namespace. Safe for concurrent use.
type SearchAttributes struct {
	c         client.Client
	namespace string
	want      map[string]enumspb.IndexedValueType

	mu      sync.Mutex
	checked time.Time // when Check last found every attribute
}

// NewSearchAttributes checks c's namespace (empty: "default") for want.
func NewSearchAttributes(c client.Client, namespace string, want map[string]enumspb.IndexedValueType) *SearchAttributes {
	return &SearchAttributes{c: c, namespace: nsOrDefault(namespace), want: want}
}

// MissingError says which search attributes a namespace lacks (or has with another
// type), why they could not be added, and how to add them. Its message is one line.
type MissingError struct {
	Namespace string
	Missing   map[string]enumspb.IndexedValueType // absent: what to create
	WrongType map[string]enumspb.IndexedValueType // present with another type: the type wanted
	Refused   error                               // why AddSearchAttributes failed; nil when not tried
}

func (e *MissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Temporal namespace %q", e.Namespace)
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, " lacks the search attributes %s", list(e.Missing))
	}
	if len(e.WrongType) > 0 {
		if len(e.Missing) > 0 {
			b.WriteString(" and")
		}
		fmt.Fprintf(&b, " has %s with another type (delete and create them again, or use another namespace)", list(e.WrongType))
	}
	if e.Refused != nil {
		fmt.Fprintf(&b, "; the server did not let this process add them (%v)", e.Refused)
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "; create them with: %s; on Temporal Cloud: %s", e.CLICommand(), e.CloudCommand())
	}
	return b.String()
}

// CLICommand is the temporal CLI command that creates the missing attributes (with the
// connection flags or TEMPORAL_* variables of the cluster added by the operator).
func (e *MissingError) CLICommand() string {
	var b strings.Builder
	fmt.Fprintf(&b, "temporal operator search-attribute create --namespace %s", e.Namespace)
	for _, name := range slices.Sorted(maps.Keys(e.Missing)) {
		fmt.Fprintf(&b, " --name %s --type %s", name, typeName(e.Missing[name]))
	}
	return b.String()
}

// CloudCommand is the tcld command that creates them on Temporal Cloud, where they are
// set on the namespace (<namespace>.<account id>) through the cloud's control plane.
func (e *MissingError) CloudCommand() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcld namespace search-attributes add --namespace %s", e.Namespace)
	if !strings.Contains(e.Namespace, ".") {
		b.WriteString(".<account id>")
	}
	for _, name := range slices.Sorted(maps.Keys(e.Missing)) {
		fmt.Fprintf(&b, " --search-attribute %s=%s", name, typeName(e.Missing[name]))
	}
	return b.String()
}

func list(m map[string]enumspb.IndexedValueType) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, name+" ("+typeName(m[name])+")")
	}
	return strings.Join(parts, ", ")
}

// typeName is the type as the temporal CLI and tcld spell it: Keyword, Int, Datetime.
func typeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	}
	s := strings.TrimPrefix(t.String(), "IndexedValueType")
	return s
}

// diff lists what the namespace lacks and what it has with another type.
func (s *SearchAttributes) diff(ctx context.Context) (*MissingError, error) {
	have, err := s.c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
	if err != nil {
		return nil, fmt.Errorf("list the search attributes of Temporal namespace %q: %w", s.namespace, err)
	}
	e := &MissingError{Namespace: s.namespace, Missing: map[string]enumspb.IndexedValueType{}, WrongType: map[string]enumspb.IndexedValueType{}}
	for name, typ := range s.want {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			e.Missing[name] = typ
		case got != typ:
			e.WrongType[name] = typ
		}
	}
	if len(e.Missing) == 0 && len(e.WrongType) == 0 {
		return nil, nil
	}
	return e, nil
}

// Ensure makes sure the namespace has every attribute: the missing ones are added
// where the server allows it (a self-hosted cluster, the dev servers). It returns a
// *MissingError when some are still missing or have another type (Temporal Cloud,
// where they are added with tcld or in the Cloud UI; a cluster that forbids it), or the
// error of listing them.
func (s *SearchAttributes) Ensure(ctx context.Context) error {
	e, err := s.diff(ctx)
	if err != nil || e == nil {
		s.setChecked(err == nil)
		return err
	}
	if len(e.Missing) > 0 {
		_, err := s.c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: s.namespace, SearchAttributes: e.Missing,
		})
		if err != nil {
			// Another process starting at the same time may have added them first.
			if again, derr := s.diff(ctx); derr == nil && again == nil {
				s.setChecked(true)
				return nil
			}
			e.Refused = err
			return e
		}
		if e, err = s.diff(ctx); err != nil || e == nil {
			s.setChecked(err == nil)
			return err
		}
	}
	return e
}

// checkEvery is how long a successful Check is believed before the next one asks
// the server again (readiness probes come every few seconds).
const checkEvery = time.Minute

// Check reports, without changing anything, whether the namespace has every attribute:
// nil, a *MissingError, or the error of listing them. A success is remembered for a
// minute.
func (s *SearchAttributes) Check(ctx context.Context) error {
	s.mu.Lock()
	fresh := time.Since(s.checked) < checkEvery
	s.mu.Unlock()
	if fresh {
		return nil
	}
	e, err := s.diff(ctx)
	s.setChecked(err == nil && e == nil)
	if err != nil {
		return err
	}
	if e != nil {
		return e
	}
	return nil
}

func (s *SearchAttributes) setChecked(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.checked = time.Now()
	} else {
		s.checked = time.Time{}
	}
}

// IsMissing reports whether err is a *MissingError.
func IsMissing(err error) bool {
	var e *MissingError
	return errors.As(err, &e)
}

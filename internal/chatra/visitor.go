package chatra

import (
	"fmt"
	"sort"
	"strings"

	"github.com/chatrabridge/chatrabridge"
)

// Visitor is a chat's visitor as a ClientCard gives it, whatever its shape: the chat's
// ids, and the visitor as the bridge knows one (chatrabridge.Visitor: the details a
// Planfix contact and task need; the conversation merges one into what it knows). Pages
// are the pages visited, in the order found, without repeats; Source the referrer or
// traffic source; Extra every other scalar the card carries, under its dotted path in the
// card ("info.language", "location.region"), and the values of known details that lost to
// another source ("info.city" when the card's own city differs).
type Visitor struct {
	ClientID string `json:"clientId"`
	ChatID   string `json:"chatId,omitempty"`
	chatrabridge.Visitor
}

// Limits on what Visitor keeps from one card, so that a hostile or bloated card cannot
// blow up a workflow's payloads.
const (
	maxPages      = 100
	maxExtra      = 100
	maxValueRunes = 1000
	maxKeyRunes   = 200
	maxWalkDepth  = 4
)

// visitorField is one of Visitor's detail fields.
type visitorField int

const (
	fieldName visitorField = iota
	fieldEmail
	fieldPhone
	fieldCity
	fieldCountry
	fieldPages
	fieldSource
	fieldDevice
	fieldOS
	fieldBrowser
	fieldIP
	numFields
)

// visitorAlias says which field a key (normalised by normKey) feeds, and how strongly:
// lower prio wins among keys at the same place. identity aliases are honoured only directly
// in a source object, never deeper, so that {"location":{"name":"Berlin"}} is no name.
type visitorAlias struct {
	field    visitorField
	prio     int
	identity bool
}

var visitorAliases = func() map[string]visitorAlias {
	m := make(map[string]visitorAlias)
	add := func(f visitorField, identity bool, keys ...string) {
		for i, k := range keys {
			m[k] = visitorAlias{field: f, prio: i, identity: identity}
		}
	}
	add(fieldName, true, "name", "fullname", "visitorname", "clientname")
	add(fieldEmail, true, "email", "emailaddress", "mail")
	add(fieldPhone, true, "phone", "phonenumber", "telephone", "tel", "mobile")
	add(fieldCity, false, "city", "cityname", "town")
	add(fieldCountry, false, "country", "countryname", "countrycode")
	add(fieldPages, false, "pages", "visitedpages", "lastpages", "pagesvisited", "pagehistory", "viewedpages")
	add(fieldSource, false, "referrer", "referer", "referrerurl", "refererurl", "source", "utmsource")
	add(fieldDevice, false, "device", "devicetype", "devicename")
	add(fieldOS, false, "os", "operatingsystem", "osname", "platform")
	add(fieldBrowser, false, "browser", "browsername")
	add(fieldIP, false, "ip", "ipaddress", "ipaddr", "clientip", "remoteip")
	return m
}()

// clientSourceKeys are the nested objects of a card that Visitor reads as sources, after
// the card's own top-level keys, in this order: data the site provides first, then
// Chatra's.
var clientSourceKeys = []string{"integrationData", "basicInfo", "info"}

// clientSkipKeys are top-level card keys that are not walked as details: the named fields
// (handled directly; notes hold what the bridge itself writes back, such as the task link)
// and the nested sources.
var clientSkipKeys = map[string]bool{
	"id": true, "_id": true, "chatId": true, "name": true, "displayedName": true,
	"email": true, "phone": true, "notes": true,
	"integrationData": true, "basicInfo": true, "info": true,
}

// Visitor extracts the visitor details from the card, wherever it carries them.
//
// Name is the card's name, else a name found directly in integrationData, basicInfo or
// info, else displayedName; email and phone likewise. The other details are looked up,
// in this order of precedence, in the card's own top-level keys, integrationData,
// basicInfo and info, including nested objects ({"location":{"city":"Berlin"}}) and lists
// of name/value pairs ([{"name":"City","value":"Berlin"}]). Keys match case-insensitively
// and ignoring "_", "-" and spaces, under common aliases (referrer or source, os or
// platform, ...). An object where a detail was expected is described by its parts
// ({"name":"Chrome","version":"120"} gives "Chrome 120"); numbers and booleans are written
// as text; nulls and shapes that make no sense are skipped. Pages are merged from every
// place they appear. Other scalars go to Extra. Every string is trimmed.
//
// Visitor never fails and never panics; a card with nothing known gives a Visitor holding
// only the ids. It is deterministic: the same card gives the same Visitor.
func (c ClientCard) Visitor() Visitor {
	v := Visitor{
		ClientID: strings.TrimSpace(c.ID),
		ChatID:   strings.TrimSpace(c.ChatID),
		Visitor:  chatrabridge.Visitor{Name: clean(c.Name), Email: clean(c.Email), Phone: clean(c.Phone)},
	}
	w := visitorWalk{v: &v}

	top := make(map[string]any, len(c.Fields))
	for k, val := range c.Fields {
		if !clientSkipKeys[k] {
			top[k] = val
		}
	}
	w.walkValue(0, "", top, 0)
	for i, key := range clientSourceKeys {
		w.walkValue(i+1, key, c.Fields[key], 0)
	}
	w.resolve()
	if v.Name == "" {
		v.Name = clean(c.DisplayedName)
	}
	return v
}

// visitorCandidate is one value found for a field, ranked by where it was found.
type visitorCandidate struct {
	source, depth, prio, seq int
	path                     string
	value                    any
}

// visitorWalk collects candidates for each field and the extra scalars of one card.
type visitorWalk struct {
	v     *Visitor
	cands [numFields][]visitorCandidate
	seq   int
}

// walkValue walks value found at path in the given source.
func (w *visitorWalk) walkValue(source int, path string, value any, depth int) {
	switch x := value.(type) {
	case map[string]any:
		w.walkObject(source, path, x, depth)
	case []any:
		w.walkArray(source, path, x, depth)
	case nil:
	default:
		if s, ok := scalarString(x); ok {
			w.extra(path, s)
		}
	}
}

// walkObject walks the keys of obj in sorted order, depth being obj's own depth.
func (w *visitorWalk) walkObject(source int, path string, obj map[string]any, depth int) {
	for _, k := range sortedKeys(obj) {
		val := obj[k]
		p := joinPath(path, k)
		if a, ok := visitorAliases[normKey(k)]; ok && (!a.identity || depth == 0) {
			w.seq++
			w.cands[a.field] = append(w.cands[a.field], visitorCandidate{
				source: source, depth: depth, prio: a.prio, seq: w.seq, path: p, value: val,
			})
			continue
		}
		switch val.(type) {
		case map[string]any, []any:
			if depth < maxWalkDepth {
				w.walkValue(source, p, val, depth+1)
			}
		default:
			w.walkValue(source, p, val, depth)
		}
	}
}

// walkArray walks a list: name/value pairs as an object, scalars as one joined extra,
// objects one by one.
func (w *visitorWalk) walkArray(source int, path string, list []any, depth int) {
	if pairs, ok := pairsObject(list); ok {
		w.walkObject(source, path, pairs, depth)
		return
	}
	if s, ok := joinScalars(list, ", "); ok {
		w.extra(path, s)
		return
	}
	for i, item := range list {
		if i >= maxPages || depth >= maxWalkDepth {
			break
		}
		if obj, ok := item.(map[string]any); ok {
			w.walkObject(source, fmt.Sprintf("%s[%d]", path, i), obj, depth+1)
		}
	}
}

// extra keeps a scalar under its path, within the limits.
func (w *visitorWalk) extra(path, value string) {
	value = clean(value)
	if value == "" || path == "" {
		return
	}
	if w.v.Extra == nil {
		w.v.Extra = make(map[string]string)
	}
	path = truncate(path, maxKeyRunes)
	if _, ok := w.v.Extra[path]; !ok && len(w.v.Extra) >= maxExtra {
		return
	}
	w.v.Extra[path] = truncate(value, maxValueRunes)
}

// resolve picks each field's value from its best candidate; the others, when they differ,
// go to Extra. Pages are merged instead.
func (w *visitorWalk) resolve() {
	targets := [numFields]*string{
		fieldName: &w.v.Name, fieldEmail: &w.v.Email, fieldPhone: &w.v.Phone,
		fieldCity: &w.v.City, fieldCountry: &w.v.Country, fieldSource: &w.v.Source,
		fieldDevice: &w.v.Device, fieldOS: &w.v.OS, fieldBrowser: &w.v.Browser, fieldIP: &w.v.IP,
	}
	for f := range numFields {
		cands := w.cands[f]
		sort.Slice(cands, func(i, j int) bool {
			a, b := cands[i], cands[j]
			if a.source != b.source {
				return a.source < b.source
			}
			if a.depth != b.depth {
				return a.depth < b.depth
			}
			if a.prio != b.prio {
				return a.prio < b.prio
			}
			return a.seq < b.seq
		})
		if f == fieldPages {
			for _, c := range cands {
				w.v.Pages = appendPages(w.v.Pages, c.value)
			}
			continue
		}
		target := targets[f]
		for _, c := range cands {
			s := truncate(renderDetail(f, c.value), maxValueRunes)
			switch {
			case s == "":
			case *target == "":
				*target = s
			case s != *target:
				w.extra(c.path, s)
			}
		}
	}
}

// renderDetail turns a value found for a field into text.
func renderDetail(f visitorField, v any) string {
	switch x := v.(type) {
	case map[string]any:
		if f == fieldSource {
			if s := firstClean(x, "url", "href", "link", "referrer", "referer"); s != "" {
				return s
			}
		}
		return describe(x)
	case []any:
		s, _ := joinScalars(x, " ")
		return s
	}
	s, _ := scalarString(v)
	return clean(s)
}

// describe renders an object standing for one detail, such as a browser, an OS or a
// device: name, model and version, with the type in parentheses; else its type or value;
// else its scalars in key order.
func describe(obj map[string]any) string {
	var parts []string
	for _, group := range [][]string{
		{"name", "title", "family", "brand", "vendor", "manufacturer"},
		{"model"},
		{"version", "major"},
	} {
		if s := firstClean(obj, group...); s != "" {
			parts = append(parts, s)
		}
	}
	kind := firstClean(obj, "type", "kind", "category")
	if len(parts) > 0 {
		s := strings.Join(parts, " ")
		if kind != "" {
			s += " (" + kind + ")"
		}
		return s
	}
	if kind != "" {
		return kind
	}
	if s := firstClean(obj, "value", "code"); s != "" {
		return s
	}
	for _, k := range sortedKeys(obj) {
		if s, ok := scalarString(obj[k]); ok {
			if s = clean(s); s != "" {
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(parts, " ")
}

// appendPages adds the pages a value holds (a string, a list of strings or of page objects,
// or one page object) to pages, skipping repeats and stopping at maxPages.
func appendPages(pages []string, v any) []string {
	add := func(p string) {
		p = truncate(clean(p), maxValueRunes)
		if p == "" || len(pages) >= maxPages {
			return
		}
		for _, have := range pages {
			if have == p {
				return
			}
		}
		pages = append(pages, p)
	}
	page := func(item any) {
		switch x := item.(type) {
		case map[string]any:
			if s := firstClean(x, "url", "href", "link", "page", "path", "location"); s != "" {
				add(s)
			} else {
				add(firstClean(x, "title", "name"))
			}
		default:
			if s, ok := scalarString(x); ok {
				for _, line := range strings.Split(s, "\n") {
					add(line)
				}
			}
		}
	}
	if list, ok := v.([]any); ok {
		for _, item := range list {
			page(item)
		}
	} else {
		page(v)
	}
	return pages
}

// pairsObject turns a list of name/value objects ([{"name":"City","value":"Berlin"}]) into
// one object; ok is false unless every item is such a pair.
func pairsObject(list []any) (map[string]any, bool) {
	if len(list) == 0 {
		return nil, false
	}
	out := make(map[string]any, len(list))
	for _, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, false
		}
		value, hasValue := obj["value"]
		name := firstClean(obj, "name", "key", "label", "title", "field")
		if !hasValue || name == "" {
			return nil, false
		}
		if _, dup := out[name]; !dup {
			out[name] = value
		}
	}
	return out, true
}

// joinScalars joins a list of scalars; ok is false if the list holds anything else or is
// empty.
func joinScalars(list []any, sep string) (string, bool) {
	if len(list) == 0 {
		return "", false
	}
	parts := make([]string, 0, len(list))
	for _, item := range list {
		if item == nil {
			continue
		}
		s, ok := scalarString(item)
		if !ok {
			return "", false
		}
		if s = clean(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, sep), true
}

// firstClean returns the first non-empty trimmed scalar among obj's keys.
func firstClean(obj map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := scalarString(obj[k]); ok {
			if s = clean(s); s != "" {
				return s
			}
		}
	}
	return ""
}

// clean trims s and makes it valid UTF-8.
func clean(s string) string {
	return strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
}

// normKey lower-cases a key and drops everything but letters and digits, so that
// "visited_pages", "visitedPages" and "Visited Pages" match.
func normKey(k string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(k) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// joinPath appends a key to a dotted path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

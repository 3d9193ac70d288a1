package chatra

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/chatrabridge/chatrabridge"
)

// card parses a client object the way ParseWebhook does.
func card(t *testing.T, obj string) ClientCard {
	t.Helper()
	var c ClientCard
	if err := json.Unmarshal([]byte(obj), &c); err != nil {
		t.Fatalf("client %s: %v", obj, err)
	}
	return c
}

func TestVisitor(t *testing.T) {
	tests := []struct {
		name   string
		client string
		want   Visitor
	}{
		{
			name:   "ids only",
			client: `{"id":"c1","chatId":"x1"}`,
			want:   Visitor{ClientID: "c1", ChatID: "x1"},
		},
		{
			name: "top-level keys",
			client: `{"id":"c1","chatId":"x1","name":" Ivan ","email":"ivan@example.com","phone":"+1 555 0100",
				"city":"Berlin","country":"Germany","ip":"203.0.113.7","browser":"Firefox 121","os":"Linux",
				"device":"desktop","referrer":"https://google.com/","pages":["https://shop/","https://shop/cart"]}`,
			want: Visitor{ClientID: "c1", ChatID: "x1", Visitor: chatrabridge.Visitor{Name: "Ivan", Email: "ivan@example.com", Phone: "+1 555 0100", City: "Berlin", Country: "Germany", IP: "203.0.113.7", Browser: "Firefox 121", OS: "Linux", Device: "desktop", Source: "https://google.com/", Pages: []string{"https://shop/", "https://shop/cart"}}},
		},
		{
			name: "nested objects in info",
			client: `{"id":"c1","info":{"location":{"city":"Lyon","country":{"name":"France","code":"FR"},"region":"ARA"},
				"browser":{"name":"Chrome","version":"120"},"os":{"name":"Windows","version":"11"},
				"device":{"type":"mobile","vendor":"Apple","model":"iPhone"},"ipAddress":"198.51.100.1"}}`,
			want: Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{City: "Lyon", Country: "France", Browser: "Chrome 120", OS: "Windows 11", Device: "Apple iPhone (mobile)", IP: "198.51.100.1", Extra: map[string]string{"info.location.region": "ARA"}}},
		},
		{
			name: "basicInfo and integrationData",
			client: `{"id":"c1","displayedName":"Visitor 4512",
				"integrationData":{"name":"Ivan Petrov","email":"ivan@example.com","plan":"gold","userId":77},
				"basicInfo":{"City":"Riga","Country":"Latvia","visited_pages":["/a","/b"],"utm_source":"newsletter"}}`,
			want: Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Name: "Ivan Petrov", Email: "ivan@example.com", City: "Riga", Country: "Latvia", Pages: []string{"/a", "/b"}, Source: "newsletter", Extra: map[string]string{"integrationData.plan": "gold", "integrationData.userId": "77"}}},
		},
		{
			name:   "name: name, then a nested name, then displayedName",
			client: `{"id":"c1","name":"","displayedName":"Visitor 1","info":{"fullName":"Ann"}}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Name: "Ann"}},
		},
		{
			name:   "displayedName when nothing else",
			client: `{"id":"c1","displayedName":"Visitor 1"}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Name: "Visitor 1"}},
		},
		{
			name:   "name wins and a different nested name is kept as extra",
			client: `{"id":"c1","name":"Ivan","displayedName":"V","integrationData":{"name":"Ivan Petrov"}}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Name: "Ivan", Extra: map[string]string{"integrationData.name": "Ivan Petrov"}}},
		},
		{
			name:   "a name deep inside is not the visitor's name",
			client: `{"id":"c1","info":{"location":{"name":"Berlin"},"company":{"name":"ACME"}}}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Extra: map[string]string{"info.location.name": "Berlin", "info.company.name": "ACME"}}},
		},
		{
			name: "pages merged from every place, repeats dropped, objects by url",
			client: `{"id":"c1","visitedPages":["/a","/b"],"lastPages":[{"url":"/b","title":"B"},{"title":"Only title"},{"href":"/c"}],
				"info":{"pages":"/d\n/a"}}`,
			want: Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Pages: []string{"/a", "/b", "Only title", "/c", "/d"}}},
		},
		{
			name:   "source from an object",
			client: `{"id":"c1","source":{"url":"https://ref.example/","medium":"cpc"}}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Source: "https://ref.example/"}},
		},
		{
			name:   "referrer preferred over source at the same place",
			client: `{"id":"c1","source":"ads","referrer":"https://r/"}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Source: "https://r/", Extra: map[string]string{"source": "ads"}}},
		},
		{
			name:   "top level wins over info; a differing info value is kept",
			client: `{"id":"c1","city":"Berlin","info":{"city":"Potsdam","country":"Germany"},"basicInfo":{"city":"Berlin"}}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{City: "Berlin", Country: "Germany", Extra: map[string]string{"info.city": "Potsdam"}}},
		},
		{
			name:   "numbers and booleans where strings were",
			client: `{"id":1,"chatId":2,"name":3,"city":12345,"ip":false,"pages":[1,2.5]}`,
			want:   Visitor{ClientID: "1", ChatID: "2", Visitor: chatrabridge.Visitor{Name: "3", City: "12345", IP: "false", Pages: []string{"1", "2.5"}}},
		},
		{
			name:   "nulls everywhere",
			client: `{"id":"c1","name":null,"city":null,"info":null,"basicInfo":{"os":null},"integrationData":null,"pages":null,"x":null}`,
			want:   Visitor{ClientID: "c1"},
		},
		{
			name:   "arrays where objects were expected",
			client: `{"id":"c1","info":["a","b"],"basicInfo":[[1],[2]],"integrationData":[{"x":1}],"browser":["Safari","17"]}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Browser: "Safari 17", Extra: map[string]string{"info": "a, b", "integrationData[0].x": "1"}}},
		},
		{
			name:   "name/value pair lists",
			client: `{"id":"c1","integrationData":[{"name":"City","value":"Oslo"},{"name":"Plan","value":"pro"},{"name":"Email","value":"o@example.com"}]}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{City: "Oslo", Email: "o@example.com", Extra: map[string]string{"integrationData.Plan": "pro"}}},
		},
		{
			name:   "unknown scalars kept, notes not",
			client: `{"id":"c1","notes":"task #12","language":"de","timezone":"Europe/Berlin","tags":["vip","new"],"visits":3}`,
			want: Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Extra: map[string]string{
				"language": "de", "timezone": "Europe/Berlin", "tags": "vip, new", "visits": "3"}}},
		},
		{
			name:   "key spelling variants",
			client: `{"id":"c1","IP_Address":"192.0.2.1","Operating System":"macOS","browser-name":"Safari","Device_Type":"tablet","last_pages":"/x"}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{IP: "192.0.2.1", OS: "macOS", Browser: "Safari", Device: "tablet", Pages: []string{"/x"}}},
		},
		{
			name:   "unicode values",
			client: `{"id":"c1","name":"Łukasz Żółć","city":"Москва","country":"日本"}`,
			want:   Visitor{ClientID: "c1", Visitor: chatrabridge.Visitor{Name: "Łukasz Żółć", City: "Москва", Country: "日本"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := card(t, tt.client)
			got := c.Visitor()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Visitor:\n got %+v\nwant %+v", got, tt.want)
			}
			for i := 0; i < 10; i++ { // maps are walked in sorted order: always the same result
				if again := c.Visitor(); !reflect.DeepEqual(again, got) {
					t.Fatalf("Visitor is not deterministic:\n%+v\n%+v", again, got)
				}
			}
		})
	}
}

func TestWebhookVisitor(t *testing.T) {
	w := mustParse(t, `{"eventName":"chatStarted","client":{"id":"c1","chatId":"x1","name":"Ivan","info":{"city":"Berlin"}}}`)
	got := w.Visitor()
	if got.ClientID != "c1" || got.ChatID != "x1" || got.Name != "Ivan" || got.City != "Berlin" {
		t.Errorf("Visitor = %+v", got)
	}
}

func TestVisitorLimits(t *testing.T) {
	var pages, extra []string
	for i := range 500 {
		pages = append(pages, fmt.Sprintf(`"/p%d"`, i))
		extra = append(extra, fmt.Sprintf(`"k%03d":"v"`, i))
	}
	long := strings.Repeat("x", 5000)
	c := card(t, `{"id":"c1","pages":[`+strings.Join(pages, ",")+`],"city":"`+long+`",`+strings.Join(extra, ",")+`}`)
	v := c.Visitor()
	if len(v.Pages) != maxPages || v.Pages[0] != "/p0" {
		t.Errorf("kept %d pages starting %q, want %d from the first", len(v.Pages), v.Pages[0], maxPages)
	}
	if len(v.Extra) != maxExtra {
		t.Errorf("kept %d extras, want %d", len(v.Extra), maxExtra)
	}
	if _, ok := v.Extra["k000"]; !ok {
		t.Errorf("the first extras in key order were not the ones kept")
	}
	if n := len([]rune(v.City)); n != maxValueRunes+1 || !strings.HasSuffix(v.City, "…") {
		t.Errorf("City has %d runes, want %d with an ellipsis", n, maxValueRunes+1)
	}

	// Deep nesting stops at maxWalkDepth instead of recursing forever.
	deep := `"leaf"`
	for range 50 {
		deep = `{"a":` + deep + `}`
	}
	v = card(t, `{"id":"c1","info":`+deep+`}`).Visitor()
	if len(v.Extra) != 0 {
		t.Errorf("a value below the depth limit was kept: %v", v.Extra)
	}
}

func TestVisitorHandMadeCard(t *testing.T) {
	// A card built in code may hold Go values JSON decoding never produces.
	c := ClientCard{ID: "c1", Fields: map[string]any{
		"city":   "Berlin",
		"ip":     3.5,
		"visits": 7,
		"info":   map[string]any{"os": int64(10), "x": []string{"not", "[]any"}, "ch": make(chan int)},
	}}
	v := c.Visitor()
	if v.City != "Berlin" || v.IP != "3.5" || v.OS != "10" || v.Extra["visits"] != "7" {
		t.Errorf("Visitor = %+v", v)
	}
}

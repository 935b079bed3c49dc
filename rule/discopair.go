package rule

import (
	"strconv"
	"strings"
)

// The <version> and <region> sections of <discovery> have one form: each
// <service> entry lets a consumer, in some of its versions (regions), call
// some versions (regions) of a provider. The code below reads, resolves
// and writes both; pairNames holds what differs, the names.

// pairEntry is one <version> or <region> entry, as VersionFilter and
// RegionFilter hold it.
type pairEntry struct {
	consumer, provider   string
	consumers, providers []string
}

// pairNames are the names a kind of entry goes by: its XML attributes and
// the fields of Nepxion's JSON form.
type pairNames struct {
	consumerAttr, providerAttr string // consumer-version-value
	entityMap                  string // versionEntityMap
	consumerList, providerList string // consumerVersionValueList
}

var (
	versionNames = pairNames{
		consumerAttr: "consumer-version-value", providerAttr: "provider-version-value",
		entityMap:    "versionEntityMap",
		consumerList: "consumerVersionValueList", providerList: "providerVersionValueList",
	}
	regionNames = pairNames{
		consumerAttr: "consumer-region-value", providerAttr: "provider-region-value",
		entityMap:    "regionEntityMap",
		consumerList: "consumerRegionValueList", providerList: "providerRegionValueList",
	}
)

func versionPair(v *VersionFilter) pairEntry {
	return pairEntry{v.Consumer, v.Provider, v.ConsumerVersions, v.ProviderVersions}
}

func regionPair(r *RegionFilter) pairEntry {
	return pairEntry{r.Consumer, r.Provider, r.ConsumerRegions, r.ProviderRegions}
}

func (rd *rawDiscovery) addVersion(p pairEntry) {
	rd.d.Versions = append(rd.d.Versions, VersionFilter{
		Consumer: p.consumer, Provider: p.provider, ConsumerVersions: p.consumers, ProviderVersions: p.providers,
	})
}

func (rd *rawDiscovery) addRegion(p pairEntry) {
	rd.d.Regions = append(rd.d.Regions, RegionFilter{
		Consumer: p.consumer, Provider: p.provider, ConsumerRegions: p.consumers, ProviderRegions: p.providers,
	})
}

// allowedFor resolves the entries for a caller (consumer service and its
// version or region) and a provider, as Nepxion's
// VersionFilterLoadBalanceListener and RegionFilterDiscoveryListener do:
// the provider values the caller may call, separated by ';'. "" means no
// restriction (no entry names the pair, or the entries that apply list no
// provider value), ";" means none (entries name the pair but none applies
// to the caller's value). Consumers and values are compared exactly,
// providers without regard to case.
func allowedFor[T any](entries []T, pair func(*T) pairEntry, consumer, value, provider string) string {
	defined, matched := false, false
	var allowed []string
	for i := range entries {
		e := pair(&entries[i])
		if e.consumer != consumer || !strings.EqualFold(e.provider, provider) {
			continue
		}
		defined = true
		if len(e.consumers) > 0 && indexOf(e.consumers, value) < 0 {
			continue
		}
		matched = true
		allowed = append(allowed, e.providers...)
	}
	switch {
	case !defined:
		return ""
	case !matched:
		return ";" // Nepxion clears the instance list
	}
	return strings.Join(allowed, ";")
}

// xPairFilters reads the <service> entries of a <version> or <region>
// element of <discovery>; Nepxion requires both service names on each.
func xPairFilters(k *xnode, path string, names *pairNames, raw *rawRule, add func(pairEntry)) error {
	for i, s := range k.kids {
		spath := path + "/" + s.name + "[" + strconv.Itoa(i+1) + "]"
		if s.name != "service" {
			raw.ignore(path + "/" + s.name)
			continue
		}
		var e pairEntry
		var err error
		if e.consumer, err = xRequired(s, spath, "consumer-service-name"); err != nil {
			return err
		}
		if e.provider, err = xRequired(s, spath, "provider-service-name"); err != nil {
			return err
		}
		if v, ok := xOptional(s, names.consumerAttr); ok {
			e.consumers = splitList(v)
		}
		if v, ok := xOptional(s, names.providerAttr); ok {
			e.providers = splitList(v)
		}
		xIgnoreAttrs(s, spath, []string{"consumer-service-name", "provider-service-name", names.consumerAttr, names.providerAttr}, raw)
		add(e)
	}
	return nil
}

// nepxionPairFilters reads a versionFilterEntity or regionFilterEntity of
// Nepxion's JSON form: its entity map (consumer -> entity list). An entity
// is added even when reading it failed, as far as it was read.
func nepxionPairFilters(n *tnode, path string, names *pairNames, raw *rawRule, add func(pairEntry)) error {
	return eachKnownKey(n, path, []string{names.entityMap}, raw, func(_ string, m *tnode) error {
		return nepxionByConsumer(m, path+"/"+names.entityMap, func(ep string, en *tnode) error {
			var e pairEntry
			fields := []string{"consumerServiceName", "providerServiceName", names.consumerList, names.providerList}
			err := eachKnownKey(en, ep, fields, raw, func(k string, f *tnode) error {
				var err error
				switch k {
				case "consumerServiceName":
					e.consumer, err = nepxionString(f, ep+"/"+k)
				case "providerServiceName":
					e.provider, err = nepxionString(f, ep+"/"+k)
				case names.consumerList:
					e.consumers, err = nepxionStrings(f, ep+"/"+k)
				default:
					e.providers, err = nepxionStrings(f, ep+"/"+k)
				}
				return err
			})
			add(e)
			return err
		})
	})
}

// pairFilterEntityNode writes <version> or <region> entries as Nepxion's
// VersionFilterEntity or RegionFilterEntity, grouped by consumer as its
// map holds them.
func pairFilterEntityNode[T any](entries []T, pair func(*T) pairEntry, names *pairNames) *tnode {
	byConsumer := obj()
	for i := range entries {
		p := pair(&entries[i])
		e := obj().add("consumerServiceName", str(p.consumer)).add("providerServiceName", str(p.provider))
		if p.consumers != nil {
			e.add(names.consumerList, strList(p.consumers))
		}
		if p.providers != nil {
			e.add(names.providerList, strList(p.providers))
		}
		appendTo(byConsumer, p.consumer, e)
	}
	return obj().add(names.entityMap, byConsumer)
}

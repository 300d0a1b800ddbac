package controllers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// storeLoad is one placement candidate with what the placer needs to know about it.
type storeLoad struct {
	Store *storagev1alpha1.Store
	// NodeLabels are the labels of the Store's node; NodeFound is false when the node is unknown.
	NodeLabels labels.Set
	NodeFound  bool
	// Reserved is the sum of the requested sizes of the Volumes already placed on the Store.
	Reserved int64
	// Volumes counts the Volumes already placed on the Store.
	Volumes int
	// ClusterDeleting is true when the Store's StorageCluster is being deleted.
	ClusterDeleting bool
}

// freeBytes is what the Store can still give out (StoreFreeBytes).
func (l storeLoad) freeBytes() int64 { return StoreFreeBytes(l.Store, l.Reserved) }

// StoreFreeBytes is what store can still give out when its placed Volumes reserve reserved
// bytes (the sum of ReservedBytes over them): capacity minus the larger of what the node reports
// used and reserved. The reservation covers Volumes the node has not created yet, so two quick
// placements never count the same free space twice. A Store that reported no capacity has none;
// the result is negative when the Store is overcommitted. Placement and the CSI controller's
// GetCapacity both count free space with it.
func StoreFreeBytes(store *storagev1alpha1.Store, reserved int64) int64 {
	if store.Status.Capacity == nil {
		return 0
	}
	used := reserved
	if store.Status.Used != nil && store.Status.Used.Value() > used {
		used = store.Status.Used.Value()
	}
	return store.Status.Capacity.Value() - used
}

// placementDecision is the outcome of choosePlacement: a Store name, or why there is none.
type placementDecision struct {
	Store   string
	Message string
}

// rejectionOrder lists why Stores are passed over, in the order messages mention them.
func rejectionOrder() []string {
	return []string{"not ready", "endpoint pending", "admin out", "engine failed", "cluster deleting", "not matching storeSelector",
		"node unknown", "not matching nodeSelector", "too full"}
}

// choosePlacement picks the Store for vol among loads: Ready at now (which includes a published
// node daemon endpoint), admin "in", engine not Failed, cluster not deleting, matching vol's selectors, with room for the whole size. Among those it takes the one
// left with the most free space, then the one with fewer Volumes, then the first by name, which
// spreads Volumes over Stores. When none fits, Message says how many Stores were passed over
// and why.
func choosePlacement(vol *storagev1alpha1.Volume, loads []storeLoad, now time.Time, timeout time.Duration) (placementDecision, error) {
	fits, rejected, largestFree, err := eligibleStores(vol, loads, now, timeout)
	if err != nil {
		return placementDecision{}, err
	}
	if len(fits) == 0 {
		return placementDecision{Message: noPlacementMessage(vol, len(loads), rejected, largestFree)}, nil
	}
	sortByPreference(fits)
	return placementDecision{Store: fits[0].Store.Name}, nil
}

// eligibleStores returns the loads that can take vol (see choosePlacement), in their order, and
// for the others how many were passed over for each reason (rejectionOrder) and the largest
// free space among those too full (-1 when none was).
func eligibleStores(vol *storagev1alpha1.Volume, loads []storeLoad, now time.Time, timeout time.Duration) ([]storeLoad, map[string]int, int64, error) {
	storeSel := labels.Everything()
	if vol.Spec.StoreSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(vol.Spec.StoreSelector)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("volume %s/%s: invalid storeSelector: %w", vol.Namespace, vol.Name, err)
		}
		storeSel = sel
	}
	nodeSel := labels.SelectorFromSet(vol.Spec.NodeSelector)
	size := vol.Spec.Size.Value()

	rejected := map[string]int{}
	var largestFree int64 = -1
	var fits []storeLoad
	for _, l := range loads {
		st := l.Store
		health := evaluateStoreHealth(st, now, timeout)
		switch {
		case health.Reason == storagev1alpha1.ReasonEndpointPending:
			rejected["endpoint pending"]++
		case !health.Ready:
			rejected["not ready"]++
		case st.Spec.AdminState == storagev1alpha1.AdminStateOut:
			rejected["admin out"]++
		case engineRefusesWrites(st):
			rejected["engine failed"]++
		case l.ClusterDeleting:
			rejected["cluster deleting"]++
		case !storeSel.Matches(labels.Set(st.Labels)):
			rejected["not matching storeSelector"]++
		case !l.NodeFound && len(vol.Spec.NodeSelector) > 0:
			rejected["node unknown"]++
		case !nodeSel.Matches(l.NodeLabels):
			rejected["not matching nodeSelector"]++
		case l.freeBytes() < size:
			rejected["too full"]++
			if f := l.freeBytes(); f > largestFree {
				largestFree = f
			}
		default:
			fits = append(fits, l)
		}
	}
	return fits, rejected, largestFree, nil
}

// sortByPreference orders candidates best first: the one left with the most free space, then
// the one with fewer Volumes, then by name.
func sortByPreference(fits []storeLoad) {
	sort.Slice(fits, func(i, j int) bool {
		fi, fj := fits[i].freeBytes(), fits[j].freeBytes()
		if fi != fj {
			return fi > fj
		}
		if fits[i].Volumes != fits[j].Volumes {
			return fits[i].Volumes < fits[j].Volumes
		}
		return fits[i].Store.Name < fits[j].Store.Name
	})
}

func noPlacementMessage(vol *storagev1alpha1.Volume, considered int, rejected map[string]int, largestFree int64) string {
	if considered == 0 {
		return fmt.Sprintf("no Store can hold %s: there are no Stores", vol.Spec.Size.String())
	}
	return fmt.Sprintf("no Store can hold %s: %d Stores considered: %s", vol.Spec.Size.String(), considered,
		strings.Join(rejectionParts(rejected, largestFree), ", "))
}

// rejectionParts says how many Stores were passed over for each reason, in rejectionOrder.
func rejectionParts(rejected map[string]int, largestFree int64) []string {
	var parts []string
	for _, why := range rejectionOrder() {
		n := rejected[why]
		if n == 0 {
			continue
		}
		part := fmt.Sprintf("%d %s", n, why)
		if why == "too full" && largestFree >= 0 {
			part += fmt.Sprintf(" (largest free space %s)", resource.NewQuantity(max(largestFree, 0), resource.BinarySI).String())
		}
		parts = append(parts, part)
	}
	return parts
}

// retryBackoff is how long to wait before trying again an operation that has been failing for
// `failing`: about as long again, between min and max, so retries space out geometrically.
func retryBackoff(failing, minDelay, maxDelay time.Duration) time.Duration {
	return min(max(failing, minDelay), maxDelay)
}

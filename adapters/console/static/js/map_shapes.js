// GeoJSON fences <-> Leaflet layers, and how each kind of fence is drawn. GeoJSON positions
// are [lon, lat]; Leaflet's are [lat, lon]: every swap happens here and nowhere else.
const L = window.L;

export const KIND_STYLE = {
  store: { color: "#1d4ed8", fillColor: "#3b82f6", fillOpacity: 0.18, weight: 2 },
  zone: { color: "#15803d", fillColor: "#22c55e", fillOpacity: 0.22, weight: 2, dashArray: "4 3" },
  competitor: { color: "#7c3aed", fillColor: "#a78bfa", fillOpacity: 0.18, weight: 2 },
  draft: { color: "#0f172a", fillColor: "#facc15", fillOpacity: 0.3, weight: 2 },
  error: { color: "#b91c1c", fillColor: "#ef4444", fillOpacity: 0.3, weight: 3, dashArray: "6 4" },
  selected: { weight: 4 },
};

export function featureToLayer(feature) {
  const g = feature.geometry;
  const swap = (ring) => ring.map(([lon, lat]) => [lat, lon]);
  if (g.type === "Point") {
    const [lon, lat] = g.coordinates;
    return L.circle([lat, lon], { radius: feature.properties.radius_m });
  }
  if (g.type === "Polygon") return L.polygon(g.coordinates.map(swap));
  return L.polygon(g.coordinates.map((poly) => poly.map(swap))); // MultiPolygon
}

// The geometry (and radius) the API expects, at full precision: Leaflet's own toGeoJSON
// rounds to 6 decimals (~10 cm), which is fine, but the test compares clicks with the stored
// positions and rounding twice would only blur that.
export function layerGeometry(layer) {
  if (layer instanceof L.Circle) {
    const c = layer.getLatLng();
    return { geometry: { type: "Point", coordinates: [c.lng, c.lat] }, radius_m: layer.getRadius() };
  }
  const ring = (lls) => {
    const pts = lls.map((p) => [p.lng, p.lat]);
    if (pts.length && (pts[0][0] !== pts.at(-1)[0] || pts[0][1] !== pts.at(-1)[1])) pts.push(pts[0]);
    return pts;
  };
  let lls = layer.getLatLngs();
  if (L.LineUtil.isFlat(lls)) lls = [lls]; // one ring given flat
  if (lls.length && !L.LineUtil.isFlat(lls[0]) && Array.isArray(lls[0][0])) {
    return { geometry: { type: "MultiPolygon", coordinates: lls.map((poly) => poly.map(ring)) } };
  }
  return { geometry: { type: "Polygon", coordinates: lls.map(ring) } };
}

export function layerToFeature(layer, props) {
  const { geometry, radius_m } = layerGeometry(layer);
  const properties = { ...props };
  delete properties.radius_m;
  if (radius_m !== undefined) properties.radius_m = Math.round(radius_m * 100) / 100;
  for (const k of ["store_id", "timezone", "opening_hours"]) if (!properties[k]) delete properties[k];
  return { type: "Feature", geometry, properties };
}

// Where a beacon or tag is drawn when it has no position of its own: its fence's middle.
export function centerOf(layer) {
  return layer instanceof L.Circle ? layer.getLatLng() : layer.getBounds().getCenter();
}

export function styleFor(kind, { error = false, selected = false } = {}) {
  const base = { ...(KIND_STYLE[kind] || KIND_STYLE.draft) };
  if (error) Object.assign(base, KIND_STYLE.error);
  if (selected) base.weight = KIND_STYLE.selected.weight;
  return base;
}

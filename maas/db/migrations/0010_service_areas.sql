-- The on-demand service area, versioned: the newest row is the one in force.
CREATE TABLE service_areas (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    geometry jsonb NOT NULL,           -- GeoJSON Polygon or MultiPolygon (lon, lat)
    created_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

DROP FUNCTION ketnoi_extents_problem(text[]);
DROP FUNCTION ketnoi_extent_problem(text);

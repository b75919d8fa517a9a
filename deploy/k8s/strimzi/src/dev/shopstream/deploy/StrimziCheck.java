// Validates Strimzi resources against the operator's own API model (io.strimzi:api).
//
// The operator's CRD schemas are generated from these classes, so checking a manifest against
// them checks what the operator would accept: known kinds and apiVersions, no unknown fields
// (the model keeps them in additionalProperties, so they are looked for there), enum values and
// polymorphic `type`s that Jackson can bind, required properties, and the @Minimum, @Maximum,
// @MinimumItems and @Pattern constraints of the schema.
//
// Input: a JSON array of resources on stdin (deploy/tests renders the kustomize overlays and
// passes the Strimzi ones). Output: one line per problem; exit 1 if there is any.
package dev.shopstream.deploy;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.introspect.Annotated;
import com.fasterxml.jackson.databind.introspect.JacksonAnnotationIntrospector;
import io.strimzi.crdgenerator.annotations.Maximum;
import io.strimzi.crdgenerator.annotations.Minimum;
import io.strimzi.crdgenerator.annotations.MinimumItems;
import io.strimzi.crdgenerator.annotations.Pattern;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

public final class StrimziCheck {
    private static final String GROUP = "kafka.strimzi.io/";
    private static final List<String> SERVED_VERSIONS = List.of("v1beta2");
    private static final Map<String, String> KINDS = Map.of(
            "Kafka", "io.strimzi.api.kafka.model.kafka.Kafka",
            "KafkaNodePool", "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
            "KafkaTopic", "io.strimzi.api.kafka.model.topic.KafkaTopic",
            "KafkaUser", "io.strimzi.api.kafka.model.user.KafkaUser");

    // Writes every property, also those the model would omit as default or null, so a value the
    // model could not take shows up as null rather than as missing.
    private static final ObjectMapper READ_BACK = new ObjectMapper().setAnnotationIntrospector(
            new JacksonAnnotationIntrospector() {
                @Override
                public JsonInclude.Value findPropertyInclusion(Annotated annotated) {
                    return JsonInclude.Value.construct(JsonInclude.Include.ALWAYS, JsonInclude.Include.ALWAYS);
                }
            });

    private final List<String> problems = new ArrayList<>();
    private final IdentityHashMap<Object, Boolean> seen = new IdentityHashMap<>();

    public static void main(String[] args) throws Exception {
        ObjectMapper mapper = new ObjectMapper()
                .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);
        JsonNode documents = mapper.readTree(System.in);
        StrimziCheck check = new StrimziCheck();
        int checked = 0;
        for (JsonNode document : documents) {
            check.document(mapper, document);
            checked++;
        }
        check.problems.forEach(System.out::println);
        System.out.println(checked + " Strimzi resources checked, " + check.problems.size() + " problems");
        System.exit(check.problems.isEmpty() ? 0 : 1);
    }

    private void document(ObjectMapper mapper, JsonNode document) {
        String kind = document.path("kind").asText();
        String name = kind + "/" + document.path("metadata").path("name").asText("?");
        String apiVersion = document.path("apiVersion").asText();
        String className = KINDS.get(kind);
        if (className == null) {
            problems.add(name + ": not a Strimzi kind this check knows");
            return;
        }
        if (!apiVersion.startsWith(GROUP)
                || !SERVED_VERSIONS.contains(apiVersion.substring(GROUP.length()))) {
            problems.add(name + ": apiVersion " + apiVersion + " is not served (" + SERVED_VERSIONS + ")");
        }
        Object resource;
        try {
            resource = mapper.treeToValue(document, Class.forName(className));
        } catch (Exception e) {
            problems.add(name + ": does not bind to the model: " + e.getMessage().split("\n")[0]);
            return;
        }
        seen.clear();
        walk(name, "", resource);
        // Strimzi's enums read an unknown value as null instead of failing: what does not read
        // back as it was written was not understood.
        roundTrip(name, "", document, READ_BACK.valueToTree(resource));
    }

    private void roundTrip(String resource, String path, JsonNode written, JsonNode read) {
        if (written.isObject()) {
            written.fields().forEachRemaining(field -> {
                String at = path.isEmpty() ? field.getKey() : path + "." + field.getKey();
                roundTrip(resource, at, field.getValue(), read == null ? null : read.get(field.getKey()));
            });
        } else if (written.isArray()) {
            for (int i = 0; i < written.size(); i++) {
                roundTrip(resource, path + "[" + i + "]", written.get(i), read == null ? null : read.get(i));
            }
        } else if (read == null || read.isNull() != written.isNull() || !read.asText().equals(written.asText())) {
            problems.add(resource + ": " + path + " = " + written + " is not accepted by the model (read back as "
                    + (read == null ? "nothing" : read.toString()) + ")");
        }
    }

    private void walk(String resource, String path, Object value) {
        if (value == null || seen.put(value, Boolean.TRUE) != null) {
            return;
        }
        if (value instanceof Collection<?> items) {
            int i = 0;
            for (Object item : items) {
                walk(resource, path + "[" + i++ + "]", item);
            }
            return;
        }
        if (value instanceof Map<?, ?> map) {
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                walk(resource, path + "." + entry.getKey(), entry.getValue());
            }
            return;
        }
        String type = value.getClass().getName();
        if (!type.startsWith("io.strimzi.") && !type.startsWith("io.fabric8.kubernetes.api.model.ObjectMeta")) {
            return;
        }
        for (Method getter : value.getClass().getMethods()) {
            String property = propertyName(getter);
            if (property == null) {
                continue;
            }
            Object child;
            try {
                child = getter.invoke(value);
            } catch (ReflectiveOperationException e) {
                continue;
            }
            String at = path.isEmpty() ? property : path + "." + property;
            if (property.equals("additionalProperties")) {
                if (child instanceof Map<?, ?> extra && !extra.isEmpty()) {
                    problems.add(resource + ": unknown field(s) " + extra.keySet() + " at " + (path.isEmpty() ? "." : path));
                }
                continue;
            }
            constraints(resource, at, getter, child);
            walk(resource, at, child);
        }
    }

    private void constraints(String resource, String at, Method getter, Object child) {
        JsonProperty json = getter.getAnnotation(JsonProperty.class);
        if (json != null && json.required() && child == null) {
            problems.add(resource + ": " + at + " is required");
        }
        Minimum minimum = getter.getAnnotation(Minimum.class);
        if (minimum != null && child instanceof Number n && n.doubleValue() < minimum.value()) {
            problems.add(resource + ": " + at + " = " + n + " is below the minimum " + minimum.value());
        }
        Maximum maximum = getter.getAnnotation(Maximum.class);
        if (maximum != null && child instanceof Number n && n.doubleValue() > maximum.value()) {
            problems.add(resource + ": " + at + " = " + n + " is above the maximum " + maximum.value());
        }
        MinimumItems items = getter.getAnnotation(MinimumItems.class);
        if (items != null && child instanceof Collection<?> c && c.size() < items.value()) {
            problems.add(resource + ": " + at + " needs at least " + items.value() + " item(s)");
        }
        Pattern pattern = getter.getAnnotation(Pattern.class);
        if (pattern != null && child instanceof String s
                && !java.util.regex.Pattern.compile(pattern.value()).matcher(s).find()) {
            problems.add(resource + ": " + at + " = '" + s + "' does not match " + pattern.value());
        }
    }

    /** The JSON property a public getter stands for, or null when it is not one. */
    private static String propertyName(Method method) {
        if (method.getParameterCount() != 0 || Modifier.isStatic(method.getModifiers())
                || method.getDeclaringClass() == Object.class
                || method.isAnnotationPresent(JsonIgnore.class)) {
            return null;
        }
        JsonProperty json = method.getAnnotation(JsonProperty.class);
        if (json != null && !json.value().isEmpty()) {
            return json.value();
        }
        String name = method.getName();
        String bare;
        if (name.startsWith("get") && name.length() > 3) {
            bare = name.substring(3);
        } else if (name.startsWith("is") && name.length() > 2
                && (method.getReturnType() == boolean.class || method.getReturnType() == Boolean.class)) {
            bare = name.substring(2);
        } else {
            return null;
        }
        return Character.toLowerCase(bare.charAt(0)) + bare.substring(1);
    }
}

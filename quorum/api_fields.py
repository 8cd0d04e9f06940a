"""Serializer fields that take only the JSON type the schema documents.

DRF's fields coerce: a CharField takes 5 as "5", an IntegerField "5", a BooleanField 0, "no"
or "off". The schema promises JSON strings, integers and booleans, and a client sending
anything else has a bug it should hear about, as a 400 naming the field. Form bodies (the
browsable API's) hold nothing but strings, so they are still read DRF's way.
"""

from django.db import models
from rest_framework import serializers
from rest_framework.utils import html


class _JSONTypeOnly:
    json_types = (str,)

    def to_internal_value(self, data):
        # type(), not isinstance(): True is an int to Python, not to JSON.
        from_form = html.is_html_input(getattr(self.root, "initial_data", None))
        if type(data) not in self.json_types and not from_form:
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(_JSONTypeOnly, serializers.CharField):
    pass


class BooleanField(_JSONTypeOnly, serializers.BooleanField):
    json_types = (bool,)


class IntegerField(_JSONTypeOnly, serializers.IntegerField):
    json_types = (int,)


class FloatField(_JSONTypeOnly, serializers.FloatField):
    json_types = (int, float)


class SlugRelatedField(_JSONTypeOnly, serializers.SlugRelatedField):
    pass


class ModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose generated fields are the ones above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: CharField,
        models.TextField: CharField,
        models.IntegerField: IntegerField,
        models.PositiveIntegerField: IntegerField,
        models.PositiveSmallIntegerField: IntegerField,
        models.FloatField: FloatField,
        models.BooleanField: BooleanField,
    }
